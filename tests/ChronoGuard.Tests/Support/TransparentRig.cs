using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using ChronoGuard.Net;
using ChronoGuard.Policy;
using ChronoGuard.Proxy;
using ChronoGuard.Resolution;

namespace ChronoGuard.Tests.Support;

/// <summary>
/// The real proxy with a transparent listener for agent <c>bot</c> on 127.0.0.1:0, in process. The
/// test stands in for the kernel's REDIRECT: each client connects from a port it registers first, and
/// the listener's original destination for that connection is the one registered (the namespace tests
/// drive the same listener through real iptables rules).
/// </summary>
internal sealed class TransparentRig : IAsyncDisposable
{
    private readonly ConcurrentDictionary<int, IPEndPoint?> _destinations = new();

    private TransparentRig(PolicyEngines engines, RecordingGate gate, AnswerMemory answers, OwnEndpoints own, TestProxy proxy)
    {
        Engines = engines;
        Gate = gate;
        Answers = answers;
        Own = own;
        Proxy = proxy;
    }

    public PolicyEngines Engines { get; }

    public RecordingGate Gate { get; }

    public AnswerMemory Answers { get; }

    public OwnEndpoints Own { get; }

    public TestProxy Proxy { get; }

    public IPEndPoint Listener => Proxy.EndPointOf(1);

    /// <param name="firstBytesMs">
    /// Long by default: a client that speaks first must not be taken for a silent one because the test
    /// was slow to send (only the test of a silent client shortens it, and waits for the server's bytes).
    /// </param>
    /// <param name="inspection">The CA's leaves and upstream trust, for names the policy inspects (SPEC §7).</param>
    /// <param name="audit">A real audit log the gate records to, or none.</param>
    /// <param name="approvals">Where requests held by <c>ask</c> wait (SPEC §9), or none.</param>
    public static TransparentRig Start(string policy, IDnsResolver? resolver = null, int firstBytesMs = 60_000, Action<ProxyOptions>? configure = null, ChronoGuard.Inspection.InspectionContext? inspection = null, ChronoGuard.Audit.AuditWriter? audit = null, ChronoGuard.Approvals.PendingApprovals? approvals = null)
    {
        var engines = new PolicyEngines(policy);
        var gate = new RecordingGate(new PolicyGate(engines.Engine, TimeProvider.System, audit));
        var answers = new AnswerMemory(1024);
        var own = new OwnEndpoints();
        TransparentRig? rig = null;
        var factory = new TransparentConnectionFactory("bot", answers, own, firstBytesMs, socket =>
            rig!._destinations.TryGetValue(((IPEndPoint)socket.RemoteEndPoint!).Port, out var d) ? d : null);
        var proxy = TestProxy.Start(configure, gate, resolver ?? new MapResolver(), null, inspection, approvals, factory);
        own.Add(proxy.EndPoint);
        own.Add(proxy.EndPointOf(1));
        rig = new TransparentRig(engines, gate, answers, own, proxy);
        return rig;
    }

    /// <summary>What the DNS guard would remember after answering <paramref name="name"/> with <paramref name="address"/> to bot.</summary>
    public void Answered(string name, IPAddress address, int ttlSeconds = 300)
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        Answers.Remember("bot", name, AddressKey.Of(address), now + (ttlSeconds * 1000L), now);
    }

    /// <summary>A client whose connection the "kernel" redirected from <paramref name="destination"/> (null: not redirected).</summary>
    public Task<RawClient> ConnectAsync(IPEndPoint? destination) =>
        RawClient.ConnectAsync(Listener, bound => _destinations[bound.Port] = destination);

    /// <summary>
    /// An HttpClient that uses no proxy: each connection it makes is "redirected" to the listener as if
    /// the kernel had, its original destination the host's address (by <paramref name="addresses"/>) and port.
    /// </summary>
    public HttpClient DirectClient(Func<string, IPAddress> addresses, System.Net.Security.RemoteCertificateValidationCallback? validate = null)
    {
        var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            ConnectCallback = async (context, _) =>
            {
                var destination = new IPEndPoint(addresses(context.DnsEndPoint.Host), context.DnsEndPoint.Port);
                var client = await ConnectAsync(destination);
                return new NetworkStream(client.Socket, ownsSocket: true);
            },
        };
        if (validate is not null)
        {
            handler.SslOptions.RemoteCertificateValidationCallback = validate;
        }

        return new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(30) };
    }

    public async ValueTask DisposeAsync()
    {
        await Proxy.DisposeAsync();
        Engines.Dispose();
    }
}
