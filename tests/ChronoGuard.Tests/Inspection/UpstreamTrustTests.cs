using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
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
