using System.Net;
using System.Net.Sockets;

namespace ChronoGuard.Proxy;

internal readonly record struct ConnectAttempt(ConnectOutcome Outcome, Socket? Socket, IPAddress? Address);
