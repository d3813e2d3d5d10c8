using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using ChronoGuard.Inspection;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Inspection;

public sealed class CertificateAuthorityTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 4, 12, 0, 0, TimeSpan.Zero);

    [Theory]
    [InlineData("example.com", true)]
    [InlineData("api.example.com", true)]
    [InlineData("API.Example.COM.", true)]
    [InlineData("badexample.com", false)]
    [InlineData("example.com.evil", false)]
    [InlineData("x.internal.test", true)]
    [InlineData("internal.test", false)]
    [InlineData("10.0.0.1", false)]
    public void A_constrained_CA_permits_a_host_exactly_as_its_name_constraints_would(string host, bool permitted)
    {
        using var ca = CertificateAuthority.Create(["example.com", "*.internal.test"], 1, TimeProvider.System);

        Assert.Equal(permitted, ca.Permits(host));
        using var open = CertificateAuthority.Create([], 1, TimeProvider.System);
        Assert.True(open.Permits(host));
    }

    [Fact]
    public void Create_MakesAnEcdsaP256CaValidForTheGivenDays()
    {
        using var ca = CertificateAuthority.Create([], 30, new ManualTimeProvider(Now));
        var cert = ca.Certificate;
        Assert.False(cert.HasPrivateKey);
        using var key = cert.GetECDsaPublicKey();
        Assert.NotNull(key);
        Assert.Equal(256, key.KeySize);
        var basic = Assert.IsType<X509BasicConstraintsExtension>(cert.Extensions["2.5.29.19"]);
        Assert.True(basic.CertificateAuthority);
        Assert.True(basic.Critical);
        var usage = Assert.IsType<X509KeyUsageExtension>(cert.Extensions["2.5.29.15"]);
        Assert.True(usage.KeyUsages.HasFlag(X509KeyUsageFlags.KeyCertSign));
        Assert.Equal(Now.AddDays(30), new DateTimeOffset(cert.NotAfter.ToUniversalTime()));
        Assert.True(cert.NotBefore.ToUniversalTime() <= Now.UtcDateTime);
        Assert.Null(cert.Extensions["2.5.29.30"]);
        Assert.Empty(ca.PermittedDomains);
    }

    [Fact]
    public void Save_SetsTheCertificateModeWhateverTheUmask()
    {
        // The key's mode only ever loses bits to the umask; the certificate's 0644 is set after creation.
        using var dir = new TempDir();
        using var ca = CertificateAuthority.Create([], 10, new ManualTimeProvider(Now));
        ca.Save(dir.Path);
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal((UnixFileMode)0b110_100_100, File.GetUnixFileMode(dir.File("ca.crt")));
            Assert.Equal((UnixFileMode)0b110_000_000, File.GetUnixFileMode(dir.File("ca.key")));
        }
    }

    [Fact]
    public void SaveThenLoad_RoundTripsWithModes0644And0600()
    {
        using var dir = new TempDir();
        var time = new ManualTimeProvider(Now);
        using var ca = CertificateAuthority.Create(["example.com"], 10, time);
        ca.Save(dir.File("out"));
        var certFile = dir.File("out/ca.crt");
        var keyFile = dir.File("out/ca.key");
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keyFile));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead, File.GetUnixFileMode(certFile));
        }

        Assert.Contains("-----BEGIN PRIVATE KEY-----", File.ReadAllText(keyFile), StringComparison.Ordinal);

        using var loaded = CertificateAuthority.Load(certFile, keyFile, time);
        Assert.Equal(ca.Certificate.Thumbprint, loaded.Certificate.Thumbprint);
        Assert.Equal(["example.com"], loaded.PermittedDomains);
    }

    [Fact]
    public void Save_NeverReplacesAnExistingCa()
    {
        using var dir = new TempDir();
        var time = new ManualTimeProvider(Now);
        using var first = CertificateAuthority.Create([], 10, time);
        first.Save(dir.Path);
        var before = File.ReadAllText(dir.File("ca.key"));
        using var second = CertificateAuthority.Create([], 10, time);
        var ex = Assert.Throws<InspectionConfigException>(() => second.Save(dir.Path));
        Assert.Equal($"{dir.File("ca.key")}: already exists; ca init never replaces a CA", ex.Message);
        Assert.Equal(before, File.ReadAllText(dir.File("ca.key")));
    }

    [Fact]
    public void Load_ProblemsAreOneLineNamingTheFile()
    {
        using var dir = new TempDir();
        var time = new ManualTimeProvider(Now);
        using var ca = CertificateAuthority.Create([], 10, time);
        ca.Save(dir.Path);
        var cert = dir.File("ca.crt");
        var key = dir.File("ca.key");

        void Refused(string certFile, string keyFile, string expected, TimeProvider? clock = null)
        {
            var ex = Assert.Throws<InspectionConfigException>(() => CertificateAuthority.Load(certFile, keyFile, clock ?? time).Dispose());
            Assert.Equal(expected, ex.Message);
            Assert.DoesNotContain('\n', ex.Message);
        }

        Refused(dir.File("none.crt"), key, $"{dir.File("none.crt")}: no such file");
        Refused(cert, dir.File("none.key"), $"{dir.File("none.key")}: no such file");
        File.WriteAllText(dir.File("junk.pem"), "not pem\n");
        Refused(dir.File("junk.pem"), key, $"{dir.File("junk.pem")}: not a PEM certificate (chronoguard ca init makes one)");
        Refused(cert, dir.File("junk.pem"), $"{dir.File("junk.pem")}: not an unencrypted PEM ECDSA P-256 private key (chronoguard ca init makes one)");
        // The certificate where the key belongs.
        Refused(cert, cert, $"{cert}: not an unencrypted PEM ECDSA P-256 private key (chronoguard ca init makes one)");

        using var other = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        File.WriteAllText(dir.File("other.key"), other.ExportPkcs8PrivateKeyPem());
        Refused(cert, dir.File("other.key"), $"{dir.File("other.key")}: not the private key of the certificate in {cert}");

        using var p384 = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        File.WriteAllText(dir.File("p384.key"), p384.ExportPkcs8PrivateKeyPem());
        Refused(cert, dir.File("p384.key"), $"{dir.File("p384.key")}: not an ECDSA P-256 key (chronoguard ca init makes one)");

        using var rsa = RSA.Create(2048);
        File.WriteAllText(dir.File("rsa.key"), rsa.ExportPkcs8PrivateKeyPem());
        Refused(cert, dir.File("rsa.key"), $"{dir.File("rsa.key")}: not an unencrypted PEM ECDSA P-256 private key (chronoguard ca init makes one)");

        // A leaf is not a CA, even with its own key.
        var leafKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=leaf", leafKey, HashAlgorithmName.SHA256);
        using var leaf = request.CreateSelfSigned(Now.AddDays(-1), Now.AddDays(1));
        File.WriteAllText(dir.File("leaf.crt"), leaf.ExportCertificatePem());
        File.WriteAllText(dir.File("leaf.key"), leafKey.ExportPkcs8PrivateKeyPem());
        Refused(dir.File("leaf.crt"), dir.File("leaf.key"), $"{dir.File("leaf.crt")}: not a CA certificate (its basic constraints do not allow signing certificates)");

        Refused(cert, key, $"{cert}: expired on {ca.Certificate.NotAfter.ToUniversalTime():yyyy-MM-ddTHH:mm:ssZ} (chronoguard ca init makes a new one)", new ManualTimeProvider(Now.AddDays(10)));
        Refused(cert, key, $"{cert}: not valid before {ca.Certificate.NotBefore.ToUniversalTime():yyyy-MM-ddTHH:mm:ssZ}", new ManualTimeProvider(Now.AddDays(-1)));
    }

    [Theory]
    [InlineData("a..com")]
    [InlineData("")]
    [InlineData("127.0.0.1")]
    [InlineData("[::1]")]
    [InlineData("a.*.com")]
    public void Create_RefusesAPermitThatIsNotADnsName(string permit)
    {
        var ex = Assert.Throws<InspectionConfigException>(() => CertificateAuthority.Create([permit], 10, new ManualTimeProvider(Now)));
        Assert.Equal($"'{permit}' is not a DNS name or *.suffix", ex.Message);
    }

    [Fact]
    public void Create_NormalizesPermits_WildcardMeansSubdomainsOnly()
    {
        using var ca = CertificateAuthority.Create(["Example.COM.", "*.bücher.de", "example.com"], 10, new ManualTimeProvider(Now));
        Assert.Equal(["example.com", ".xn--bcher-kva.de"], ca.PermittedDomains);
        Assert.True(ca.Certificate.Extensions["2.5.29.30"]!.Critical);
    }
}
