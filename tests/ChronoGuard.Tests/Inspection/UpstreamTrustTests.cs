using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using ChronoGuard.Inspection;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Inspection;

public sealed class UpstreamTrustTests
{
    [Fact]
    public async Task Load_TrustsAnOriginChainingToTheFile_ForItsOwnNameOnly()
    {
        using var dir = new TempDir();
        using var originCa = CertificateAuthority.Create([], 30, TimeProvider.System);
        File.WriteAllText(dir.File("trust.pem"), originCa.Certificate.ExportCertificatePem());
        var trust = UpstreamTrust.Load(dir.File("trust.pem"));
        var origin = new LeafCertificates(originCa, 4, TimeProvider.System).For("origin.test");

        Assert.True(await ValidatesAsync(trust, origin, "origin.test", "origin.test"));
        Assert.True(await ValidatesAsync(trust, origin, "ORIGIN.test", "ORIGIN.test"));
        // The same certificate for another name (SslStream's TargetHost agreeing or not) is refused.
        Assert.False(await ValidatesAsync(trust, origin, "other.test", "other.test"));
        Assert.False(await ValidatesAsync(trust, origin, "origin.test", "other.test"));

        // A chain to a CA not in the file is refused, even for the right name.
        using var stranger = CertificateAuthority.Create([], 30, TimeProvider.System);
        var forged = new LeafCertificates(stranger, 4, TimeProvider.System).For("origin.test");
        Assert.False(await ValidatesAsync(trust, forged, "origin.test", "origin.test"));
    }

    [Fact]
    public async Task Load_FollowsTheIntermediatesTheOriginSends_ToARootInTheFile()
    {
        using var dir = new TempDir();
        var now = DateTimeOffset.UtcNow;
        using var rootKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var rootRequest = new CertificateRequest("CN=origin root", rootKey, HashAlgorithmName.SHA256);
        rootRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        rootRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign, true));
        using var root = rootRequest.CreateSelfSigned(now.AddHours(-1), now.AddDays(30));

        using var midKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var midRequest = new CertificateRequest("CN=origin intermediate", midKey, HashAlgorithmName.SHA256);
        midRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        midRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign, true));
        using var midPublic = midRequest.Create(root, now.AddHours(-1), now.AddDays(20), [1, 2, 3]);
        using var mid = midPublic.CopyWithPrivateKey(midKey);

        using var leafKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var leafRequest = new CertificateRequest("CN=origin.test", leafKey, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("origin.test");
        leafRequest.CertificateExtensions.Add(san.Build());
        leafRequest.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        using var leafPublic = leafRequest.Create(mid, now.AddHours(-1), now.AddDays(10), [4, 5, 6]);
        using var leaf = leafPublic.CopyWithPrivateKey(leafKey);

        File.WriteAllText(dir.File("root.pem"), root.ExportCertificatePem());
        var trust = UpstreamTrust.Load(dir.File("root.pem"));
        var intermediatePublic = X509CertificateLoader.LoadCertificate(mid.RawData);
        Assert.True(await ValidatesAsync(trust, SslStreamCertificateContext.Create(leaf, [intermediatePublic], offline: true), "origin.test", "origin.test"));
        // Without the intermediate on the wire, the root alone cannot vouch for the leaf.
        Assert.False(await ValidatesAsync(trust, SslStreamCertificateContext.Create(leaf, null, offline: true), "origin.test", "origin.test"));

        // A leaf for another purpose (client authentication only) is no server certificate.
        var clientOnly = new CertificateRequest("CN=origin.test", leafKey, HashAlgorithmName.SHA256);
        clientOnly.CertificateExtensions.Add(san.Build());
        clientOnly.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2")], false));
        using var clientPublic = clientOnly.Create(mid, now.AddHours(-1), now.AddDays(10), [7, 8, 9]);
        using var clientLeaf = clientPublic.CopyWithPrivateKey(leafKey);
        Assert.False(await ValidatesAsync(trust, SslStreamCertificateContext.Create(clientLeaf, [intermediatePublic], offline: true), "origin.test", "origin.test"));
    }

    [Fact]
    public async Task System_RefusesWhatTheSystemStoreDoesNotTrust()
    {
        using var originCa = CertificateAuthority.Create([], 30, TimeProvider.System);
        var origin = new LeafCertificates(originCa, 4, TimeProvider.System).For("origin.test");
        Assert.False(await ValidatesAsync(UpstreamTrust.System, origin, "origin.test", "origin.test"));
        Assert.False(UpstreamTrust.System.Validate("origin.test", null, null, SslPolicyErrors.None));
    }

    [Fact]
    public void Load_ProblemsAreOneLineNamingTheFile()
    {
        using var dir = new TempDir();
        var missing = Assert.Throws<InspectionConfigException>(() => UpstreamTrust.Load(dir.File("none.pem")));
        Assert.Equal($"{dir.File("none.pem")}: no such file", missing.Message);
        File.WriteAllText(dir.File("empty.pem"), "nothing here\n");
        var empty = Assert.Throws<InspectionConfigException>(() => UpstreamTrust.Load(dir.File("empty.pem")));
        Assert.Equal($"{dir.File("empty.pem")}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)", empty.Message);
        File.WriteAllText(dir.File("bad.pem"), "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
        var bad = Assert.Throws<InspectionConfigException>(() => UpstreamTrust.Load(dir.File("bad.pem")));
        Assert.Equal($"{dir.File("bad.pem")}: not a PEM certificate bundle", bad.Message);
    }

    /// <summary>A real handshake: the client's callback is <see cref="UpstreamTrust.Validate"/> for <paramref name="host"/>.</summary>
    private static async Task<bool> ValidatesAsync(UpstreamTrust trust, SslStreamCertificateContext server, string targetHost, string host)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        using var accepted = await listener.AcceptTcpClientAsync();
        await using var serverTls = new SslStream(accepted.GetStream());
        await using var clientTls = new SslStream(client.GetStream());
        var serverSide = serverTls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificateContext = server });
        var clientSide = clientTls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = targetHost,
            RemoteCertificateValidationCallback = (_, cert, chain, errors) => trust.Validate(host, cert, chain, errors),
        });
        try
        {
            await clientSide.WaitAsync(TimeSpan.FromSeconds(30));
            await serverSide.WaitAsync(TimeSpan.FromSeconds(30));
            return true;
        }
        catch (AuthenticationException)
        {
            return false;
        }
    }
}
