using System.Net;
using System.Net.Sockets;
using ChronoGuard.Http;
using ChronoGuard.Net;
using ChronoGuard.Resolution;

namespace ChronoGuard.Proxy;

/// <summary>
/// A transparent listener (SPEC §10): connections the pod's rules redirected here, each the bound
/// agent's, to the destination the kernel remembers for it.
/// </summary>
/// <param name="agent">The agent every connection redirected here is.</param>
/// <param name="answers">What the DNS guard answered, per agent: names for protocols that carry none, and the name/address binding.</param>
/// <param name="own">The sidecar's own listeners: a destination among them would loop.</param>
/// <param name="firstBytesMs">How long a silent client waits before it is decided as a protocol where the server speaks first.</param>
/// <param name="destinationOf">Reads a connection's original destination; <see cref="OriginalDestination.Read"/> unless a test stands in for the kernel.</param>
internal sealed class TransparentConnectionFactory(string agent, AnswerMemory answers, OwnEndpoints own, int firstBytesMs, Func<Socket, IPEndPoint?>? destinationOf = null) : IConnectionFactory
{
    private readonly Func<Socket, IPEndPoint?> _destinationOf = destinationOf ?? OriginalDestination.Read;

    public string Agent => agent;

    public AnswerMemory Answers => answers;

    public OwnEndpoints Own => own;

    public int FirstBytesMs => firstBytesMs;

    public ClientConnection Create(ProxyServer server, Socket socket, long id) => new TransparentConnection(server, socket, id, this, _destinationOf(socket));

    /// <summary>A client refused before it is served knows nothing of a proxy: it is closed without a word.</summary>
    public int WriteRefusal(Span<byte> buffer, in Refusal refusal) => 0;
}
