using System.Net.Sockets;
using ChronoGuard.Http;

namespace ChronoGuard.Proxy;

/// <summary>HTTP proxy listeners: the main one, and those bound to an agent (<c>Proxy:Listeners</c>, SPEC §8).</summary>
internal sealed class HttpConnectionFactory(string? listenerAgent = null) : IConnectionFactory
{
    /// <summary>The agent this listener's clients are (SPEC §8), or null when they log in.</summary>
    public string? ListenerAgent => listenerAgent;

    public ClientConnection Create(ProxyServer server, Socket socket, long id) => new HttpConnection(server, socket, id, listenerAgent);

    public int WriteRefusal(Span<byte> buffer, in Refusal refusal) => ResponseWriter.WriteRefusal(buffer, refusal);
}
