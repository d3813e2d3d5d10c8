using System.Net;
using ChronoGuard.Inspection;
using ChronoGuard.Proxy;
using Microsoft.Extensions.Logging.Abstractions;

namespace ChronoGuard.Tests.Support;

/// <summary>The real proxy, in process, on 127.0.0.1:0.</summary>
internal sealed class TestProxy : IAsyncDisposable
{
    private TestProxy(ProxyServer server)
    {
        Server = server;
    }

    public ProxyServer Server { get; }

    public IPEndPoint EndPoint => Server.LocalEndPoint!;

    public Uri Uri => new($"http://127.0.0.1:{EndPoint.Port}");

    /// <summary>The address of listener <paramref name="index"/>: 0 is the HTTP proxy port, then the <c>listeners</c> given to <see cref="Start"/>.</summary>
    public IPEndPoint EndPointOf(int index) => Server.LocalEndPoints[index]!;

    /// <param name="listeners">More listeners on 127.0.0.1:0 with these protocols (agent-bound HTTP, SOCKS5).</param>
    /// <param name="inspection">The CA's leaves and the upstream trust, for tunnels the gate asks to inspect (SPEC §7).</param>
    public static TestProxy Start(Action<ProxyOptions>? configure = null, IRequestGate? gate = null, IDnsResolver? resolver = null, TimeProvider? time = null, InspectionContext? inspection = null, params IConnectionFactory[] listeners) =>
        Start(configure, gate, resolver, time, inspection, approvals: null, listeners);

    /// <param name="approvals">Where requests held by <c>ask</c> wait (SPEC §9), or none.</param>
    public static TestProxy Start(Action<ProxyOptions>? configure, IRequestGate? gate, IDnsResolver? resolver, TimeProvider? time, InspectionContext? inspection, ChronoGuard.Approvals.PendingApprovals? approvals, params IConnectionFactory[] listeners)
    {
        var options = new ProxyOptions { Listen = "127.0.0.1:0" };
        configure?.Invoke(options);
        var context = new ProxyContext(options, resolver ?? SystemDnsResolver.Instance, time ?? TimeProvider.System, NullLogger.Instance, gate ?? AllowAllGate.Instance)
        {
            Inspection = inspection,
            Approvals = approvals,
        };
        var all = new List<ProxyListener> { new(options.Listen, "Proxy:Listen", new HttpConnectionFactory()) };
        foreach (var factory in listeners)
        {
            all.Add(new ProxyListener("127.0.0.1:0", "test listener", factory));
        }

        var server = new ProxyServer(context, all);
        server.Start();
        return new TestProxy(server);
    }

    public HttpClient CreateClient(bool trustTestCertificate = true)
    {
        var handler = new SocketsHttpHandler
        {
            Proxy = new WebProxy(Uri),
            UseProxy = true,
            PooledConnectionLifetime = TimeSpan.FromMinutes(1),
        };
        if (trustTestCertificate)
        {
            // Trust exactly the test run's self-signed origin certificate, nothing else.
            handler.SslOptions.RemoteCertificateValidationCallback = static (_, cert, _, _) =>
                cert is not null && cert.GetCertHashString() == TestCertificates.Server.GetCertHashString();
        }

        return new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(30) };
    }

    public ValueTask DisposeAsync() => Server.DisposeAsync();
}
