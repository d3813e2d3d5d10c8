using System.Net.Sockets;
using ChronoGuard.Http;

namespace ChronoGuard.Proxy;

/// <summary>SOCKS5 listeners (SPEC §8): <c>Socks:Listen</c>, and those bound to an agent (<c>Socks:Listeners</c>).</summary>
internal sealed class SocksConnectionFactory(string? listenerAgent = null) : IConnectionFactory
{
    /// <summary>The agent this listener's clients are (SPEC §8), or null when they log in.</summary>
    public string? ListenerAgent => listenerAgent;

    public ClientConnection Create(ProxyServer server, Socket socket, long id) => new SocksConnection(server, socket, id, listenerAgent);

    /// <summary>A client refused before it is served gets "no acceptable method" to its greeting, and the close.</summary>
    public int WriteRefusal(Span<byte> buffer, in Refusal refusal)
    {
        buffer[0] = SocksConnection.Version;
        buffer[1] = SocksConnection.NoAcceptableMethod;
        return 2;
    }
}
