using System.Net;
using System.Security.Cryptography.X509Certificates;
using ChronoGuard.Inspection;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Inspection;

public sealed class LeafCertificatesTests
{
    [Theory]
    [InlineData("api.example.com")]
    [InlineData("Api.Example.COM.")]
    [InlineData("a-very-long-label-that-pushes-the-host-name.past-sixty-four-characters.example.com")]
    public async Task For_ServesALeafForTheHostThatAClientTrustingTheCaAccepts(string host)
    {
        using var ca = CertificateAuthority.Create([], 30, TimeProvider.System);
        var leaves = new LeafCertificates(ca, 16, TimeProvider.System);
        var sni = host.TrimEnd('.').ToLowerInvariant();
        var (seen, trusted, errors, chain) = await InspectionHandshake.RunAsync(leaves.For(host), sni, ca.Certificate);
        Assert.True(trusted, $"errors {errors}, chain {chain}");
        Assert.Equal(ca.Certificate.SubjectName.RawData, seen.IssuerName.RawData);
        Assert.Equal([sni], seen.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single().EnumerateDnsNames());
        Assert.False(seen.MatchesHostname("other." + sni));
        using var key = seen.GetECDsaPublicKey();
        Assert.Equal(256, key!.KeySize);
        Assert.Equal(["1.3.6.1.5.5.7.3.1"], seen.Extensions.OfType<X509EnhancedKeyUsageExtension>().Single().EnhancedKeyUsages.Cast<System.Security.Cryptography.Oid>().Select(o => o.Value));
        Assert.False(seen.Extensions.OfType<X509BasicConstraintsExtension>().Single().CertificateAuthority);
    }

    [Theory]
    [InlineData("127.0.0.1", "127.0.0.1")]
    [InlineData("::1", "::1")]
    [InlineData("[::1]", "::1")]
    public async Task For_AnIpLiteral_GetsAnIpSan(string host, string address)
    {
        using var ca = CertificateAuthority.Create([], 30, TimeProvider.System);
        var leaves = new LeafCertificates(ca, 16, TimeProvider.System);
        var (seen, trusted, errors, chain) = await InspectionHandshake.RunAsync(leaves.For(host), address, ca.Certificate);
        Assert.True(trusted, $"errors {errors}, chain {chain}");
        var san = seen.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single();
        Assert.Equal([IPAddress.Parse(address)], san.EnumerateIPAddresses());
        Assert.Empty(san.EnumerateDnsNames());
    }

    [Fact]
    public async Task For_ConcurrentFirstCallsForAHost_MintOnce()
    {
        using var ca = CertificateAuthority.Create([], 30, TimeProvider.System);
        var leaves = new LeafCertificates(ca, 16, TimeProvider.System);
        using var start = new Barrier(8);
        var contexts = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Factory.StartNew(
            () =>
            {
                start.SignalAndWait();
                return leaves.For("race.example.com");
            },
            TaskCreationOptions.LongRunning)));
        Assert.Equal(1, leaves.Minted);
        Assert.All(contexts, c => Assert.Same(contexts[0], c));
        Assert.Same(contexts[0], leaves.For("RACE.example.com"));
        Assert.Equal(1, leaves.Minted);
    }

    [Fact]
    public void TheCacheNeverHoldsMoreThanItsCapacity_AndKeepsTheHostsInUse()
    {
        using var ca = CertificateAuthority.Create([], 30, TimeProvider.System);
        var leaves = new LeafCertificates(ca, 8, TimeProvider.System);
        var hot = leaves.For("hot.example.com");
        for (var i = 0; i < 200; i++)
        {
            leaves.For($"h{i}.example.com");
            Assert.True(leaves.Count <= leaves.Capacity, $"{leaves.Count} hosts cached after {i + 1} new names");
            // The hot host is asked for between every two new names, as a host in use is.
            Assert.Same(hot, leaves.For("hot.example.com"));
        }

        Assert.Equal(8, leaves.Count);
        Assert.Equal(201, leaves.Minted);

        // A host pushed out is minted again when asked for (the cache bounds memory, not what is served).
        leaves.For("h0.example.com");
        Assert.Equal(202, leaves.Minted);
    }

    [Fact]
    public async Task TheCacheStaysBoundedUnderConcurrentNewHosts()
    {
        using var ca = CertificateAuthority.Create([], 30, TimeProvider.System);
        var leaves = new LeafCertificates(ca, 16, TimeProvider.System);
        using var start = new Barrier(4);
        await Task.WhenAll(Enumerable.Range(0, 4).Select(t => Task.Factory.StartNew(
            () =>
            {
                start.SignalAndWait();
                for (var i = 0; i < 100; i++)
                {
                    leaves.For($"t{t}-{i}.example.com");
                }
            },
            TaskCreationOptions.LongRunning)));
        Assert.True(leaves.Count <= leaves.Capacity, $"{leaves.Count} hosts cached, capacity {leaves.Capacity}");
    }

    [Fact]
    public void ALeafNearItsEndIsReplaced_AndNeverOutlivesTheCa()
    {
        var time = new ManualTimeProvider(new DateTimeOffset(2026, 12, 4, 12, 0, 0, TimeSpan.Zero));
        using var ca = CertificateAuthority.Create([], 10, time);
        var leaves = new LeafCertificates(ca, 4, time);
        var first = leaves.For("api.example.com");
        Assert.Equal(time.GetUtcNow() + CertificateAuthority.LeafLifetime, new DateTimeOffset(first.TargetCertificate.NotAfter.ToUniversalTime()));

        time.Advance(CertificateAuthority.LeafLifetime - CertificateAuthority.RenewBefore - TimeSpan.FromSeconds(1));
        Assert.Same(first, leaves.For("api.example.com"));
        time.Advance(TimeSpan.FromSeconds(1));
        var second = leaves.For("api.example.com");
        Assert.NotSame(first, second);
        Assert.Same(second, leaves.For("api.example.com"));
        Assert.Equal(2, leaves.Minted);
        Assert.Equal(ca.Certificate.NotAfter, second.TargetCertificate.NotAfter);

        // Within the CA's last day the leaf cut short by it is served as it is, never minted per handshake.
        time.Set(ca.Certificate.NotAfter.ToUniversalTime().AddMinutes(-1));
        Assert.Same(second, leaves.For("api.example.com"));
        Assert.Equal(2, leaves.Minted);

        // Past the CA's end nothing can be minted: one line saying so.
        time.Set(ca.Certificate.NotAfter.ToUniversalTime());
        var expired = Assert.Throws<InspectionConfigException>(() => leaves.For("api.example.com"));
        Assert.Equal($"the inspection CA {ca.Certificate.Subject} expired on {ca.Certificate.NotAfter.ToUniversalTime():yyyy-MM-ddTHH:mm:ssZ} (chronoguard ca init makes a new one)", expired.Message);
        Assert.Throws<InspectionConfigException>(() => leaves.For("new.example.com"));
        Assert.True(leaves.Count <= leaves.Capacity);
    }

    [Theory]
    [InlineData("api.example.com", true)]
    [InlineData("example.com", true)]
    [InlineData("a.b.example.com", true)]
    [InlineData("x.other.org", true)]
    [InlineData("other.org", false)]
    [InlineData("badexample.com", false)]
    [InlineData("example.com.evil.net", false)]
    [InlineData("127.0.0.1", false)]
    public async Task ANameConstrainedCa_IsTrustedOnlyForItsPermittedNames(string host, bool permitted)
    {
        using var ca = CertificateAuthority.Create(["example.com", "*.other.org"], 30, TimeProvider.System);
        var leaves = new LeafCertificates(ca, 16, TimeProvider.System);
        var (_, trusted, errors, chain) = await InspectionHandshake.RunAsync(leaves.For(host), host, ca.Certificate);
        Assert.True(permitted == trusted, $"{host}: trusted {trusted}, errors {errors}, chain {chain}");
        if (!permitted)
        {
            Assert.True(chain.HasFlag(X509ChainStatusFlags.HasNotPermittedNameConstraint) || chain.HasFlag(X509ChainStatusFlags.HasExcludedNameConstraint), chain.ToString());
        }
    }

    [Theory]
    [InlineData("api.example.com", true)]
    [InlineData("other.org", false)]
    [InlineData("127.0.0.1", false)]
    public async Task Curl_TrustsTheLeavesOfTheCa_WithinItsNameConstraints(string host, bool permitted)
    {
        await ExternalTools.EnsureAsync("curl");
        using var dir = new TempDir();
        using var ca = CertificateAuthority.Create(["example.com"], 30, TimeProvider.System);
        File.WriteAllText(dir.File("ca.crt"), ca.Certificate.ExportCertificatePem());
        var leaves = new LeafCertificates(ca, 16, TimeProvider.System);
        var isIp = IPAddress.TryParse(host, out _);
        await using var server = new LeafServer(leaves, noSni: host);
        string[] args = isIp
            ? ["-sS", "--cacert", dir.File("ca.crt"), $"https://{host}:{server.Port}/"]
            : ["-sS", "--cacert", dir.File("ca.crt"), "--resolve", $"{host}:{server.Port}:127.0.0.1", $"https://{host}:{server.Port}/"];
        var (code, output) = await ExternalTools.RunAsync("curl", args, TimeSpan.FromSeconds(30));
        if (permitted)
        {
            Assert.True(code == 0, output);
            Assert.Equal("ok", output);
        }
        else
        {
            // 60: the peer certificate cannot be authenticated with the known CA certificates.
            Assert.True(code == 60, $"exit {code}: {output}");
        }
    }
}
