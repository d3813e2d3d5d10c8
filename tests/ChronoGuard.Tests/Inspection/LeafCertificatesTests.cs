using System.Net;
using System.Security.Cryptography.X509Certificates;
using ChronoGuard.Inspection;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Inspection;

public sealed class LeafCertificatesTests
{
    [Theory]
    [InlineData("api.example.com")]
    [InlineData("a-very-long-label-that-pushes-the-host-name.past-sixty-four-characters.example.com")]
    public async Task For_ServesALeafForTheHostThatAClientTrustingTheCaAccepts(string host)
    {
        using var ca = CertificateAuthority.Create([], 30, TimeProvider.System);
        var leaves = new LeafCertificates(ca, 16, TimeProvider.System);
        var (seen, trusted, errors, chain) = await InspectionHandshake.RunAsync(leaves.For(host), host, ca.Certificate);
        Assert.True(trusted, $"errors {errors}, chain {chain}");
        Assert.Equal(ca.Certificate.SubjectName.RawData, seen.IssuerName.RawData);
        Assert.True(seen.MatchesHostname(host, allowWildcards: false, allowCommonName: false));
        Assert.False(seen.MatchesHostname("other." + host));
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
}
