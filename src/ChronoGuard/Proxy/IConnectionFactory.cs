using System.Net.Sockets;
using ChronoGuard.Http;

namespace ChronoGuard.Proxy;

/// <summary>
/// A listener's protocol: what an accepted socket becomes, and how a client is refused before it is
/// served (over capacity, out of descriptors). The server owns accept, admission, heartbeat and drain
/// for every listener alike; a new front end is a new factory and connection type, nothing else.
/// </summary>
internal interface IConnectionFactory
{
    ClientConnection Create(ProxyServer server, Socket socket, long id);

    /// <summary>The bytes that refuse an unserved client in this protocol; 0 to close without a word.</summary>
    int WriteRefusal(Span<byte> buffer, in Refusal refusal);
}
