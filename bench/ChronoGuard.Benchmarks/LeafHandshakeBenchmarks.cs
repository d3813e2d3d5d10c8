using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using BenchmarkDotNet.Attributes;
using ChronoGuard.Inspection;

namespace ChronoGuard.Benchmarks;

/// <summary>
/// Issue 17: "a cached leaf adds nothing measurable to the handshake". One full TLS handshake over
/// loopback TCP, the server's certificate either a context made once beforehand (the floor) or the
/// cached leaf looked up by SNI in the server's options callback, as an inspected tunnel does.
/// </summary>
[MemoryDiagnoser]
public class LeafHandshakeBenchmarks
{
    private const string Host = "api.example.com";
    private CertificateAuthority _ca = null!;
    private LeafCertificates _leaves = null!;
    private SslStreamCertificateContext _fixed = null!;
    private TcpListener _listener = null!;
    private IPEndPoint _endpoint = null!;

    [GlobalSetup]
    public void Setup()
    {
        _ca = CertificateAuthority.Create([], 30, TimeProvider.System);
        _leaves = new LeafCertificates(_ca, 1024, TimeProvider.System);
        // The same kind of leaf for the same name, held directly: the only difference is the lookup.
        _fixed = new LeafCertificates(_ca, 1, TimeProvider.System).For(Host);
        _leaves.For(Host);
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        _endpoint = (IPEndPoint)_listener.LocalEndpoint;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _listener.Stop();
        _ca.Dispose();
    }

    [Benchmark(Baseline = true)]
    public Task PrebuiltContext() => HandshakeAsync(new ServerOptionsSelectionCallback((_, _, _, _) => ValueTask.FromResult(new SslServerAuthenticationOptions
    {
        ServerCertificateContext = _fixed,
        ApplicationProtocols = [SslApplicationProtocol.Http11],
    })));

    [Benchmark]
    public Task CachedLeafBySni() => HandshakeAsync(new ServerOptionsSelectionCallback((_, hello, _, _) => ValueTask.FromResult(new SslServerAuthenticationOptions
    {
        ServerCertificateContext = _leaves.For(hello.ServerName),
        ApplicationProtocols = [SslApplicationProtocol.Http11],
    })));

    private async Task HandshakeAsync(ServerOptionsSelectionCallback select)
    {
        using var client = new TcpClient();
        var accepting = _listener.AcceptTcpClientAsync();
        await client.ConnectAsync(_endpoint);
        using var accepted = await accepting;
        await using var serverTls = new SslStream(accepted.GetStream());
        await using var clientTls = new SslStream(client.GetStream());
        var server = serverTls.AuthenticateAsServerAsync(select, null);
        await clientTls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = Host,
            ApplicationProtocols = [SslApplicationProtocol.Http11],
            // Both variants pay the same client-side check; what is compared is the server's side.
            RemoteCertificateValidationCallback = (_, cert, _, _) => cert is X509Certificate2 c && c.MatchesHostname(Host),
        });
        await server;
    }
}
