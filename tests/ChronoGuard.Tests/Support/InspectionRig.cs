using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using ChronoGuard.Inspection;

namespace ChronoGuard.Tests.Support;

/// <summary>
/// What an inspection test needs: ChronoGuard's CA (its <c>ca.crt</c> written for clients), a TLS echo
/// origin with a certificate of the test's own CA for <see cref="Host"/> and <see cref="Opaque"/>, the
/// proxy trusting only that CA upstream, and a resolver that sends every test name to loopback.
/// <see cref="Misnamed"/> reaches the same origin under a name its certificate does not carry.
/// </summary>
internal sealed class InspectionRig : IAsyncDisposable
{
    public const string Host = "api.test";
    public const string Opaque = "plain.test";
    public const string Misnamed = "evil.test";

    private InspectionRig(TempDir dir, CertificateAuthority ca, TestCa originCa, TlsEchoOrigin origin)
    {
        Dir = dir;
        Ca = ca;
        OriginCa = originCa;
        Origin = origin;
        Ca.Save(dir.Path);
        CaFile = dir.File(CertificateAuthority.CertificateFileName);
        OriginCaFile = originCa.WritePem(dir.File("origin-ca.pem"));
        Inspection = new InspectionContext
        {
            Leaves = new LeafCertificates(ca, 64, TimeProvider.System),
            Trust = UpstreamTrust.Load(OriginCaFile),
        };
        Resolver = new MapResolver { [Host] = IPAddress.Loopback, [Opaque] = IPAddress.Loopback, [Misnamed] = IPAddress.Loopback };
    }

    public TempDir Dir { get; }

    public CertificateAuthority Ca { get; }

    /// <summary>ChronoGuard's CA certificate as PEM: what clients are told to trust (curl --cacert).</summary>
    public string CaFile { get; }

    public TestCa OriginCa { get; }

    /// <summary>The origin's CA as PEM: the proxy's upstream trust file, and a client's for opaque tunnels.</summary>
    public string OriginCaFile { get; }

    public TlsEchoOrigin Origin { get; }

    public InspectionContext Inspection { get; }

    public MapResolver Resolver { get; }

    public int Port => Origin.Port;

    public Uri Url(string path, string host = Host) => new($"https://{host}:{Port}{path}");

    /// <param name="permitted">The CA's name constraints (<c>ca init --permit</c>); none by default.</param>
    public static async Task<InspectionRig> StartAsync(params string[] permitted)
    {
        var dir = new TempDir();
        var ca = CertificateAuthority.Create(permitted, 1, TimeProvider.System);
        var originCa = new TestCa();
        var origin = await TlsEchoOrigin.StartAsync(originCa.Issue(Host, Opaque));
        return new InspectionRig(dir, ca, originCa, origin);
    }

    /// <summary>An HttpClient through the proxy that trusts exactly <paramref name="trusted"/> (ChronoGuard's CA by default).</summary>
    public HttpClient Client(TestProxy proxy, X509Certificate2? trusted = null, int maxConnections = 1, NetworkCredential? proxyCredentials = null)
    {
        var root = trusted ?? Ca.Certificate;
        var handler = new SocketsHttpHandler
        {
            Proxy = new WebProxy(proxy.Uri) { Credentials = proxyCredentials },
            UseProxy = true,
            MaxConnectionsPerServer = maxConnections,
            PooledConnectionLifetime = TimeSpan.FromMinutes(1),
        };
        handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) => ChainsTo(root, certificate, errors);
        return new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(30) };
    }

    /// <summary>A certificate valid for its name (checked by SslStream) that chains to exactly <paramref name="root"/>.</summary>
    public static bool ChainsTo(X509Certificate2 root, X509Certificate? certificate, SslPolicyErrors errors)
    {
        if (certificate is null || (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != 0)
        {
            return false;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(root);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        using var leaf = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        return chain.Build(leaf);
    }

    public async ValueTask DisposeAsync()
    {
        await Origin.DisposeAsync();
        OriginCa.Dispose();
        Ca.Dispose();
        Dir.Dispose();
    }
}
