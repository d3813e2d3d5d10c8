using System.Net;

namespace ChronoGuard.Proxy;

/// <summary>What the gate may know of the client connection a request arrived on: no more.</summary>
internal readonly record struct ConnectionInfo(long Id, IPEndPoint? Remote);
