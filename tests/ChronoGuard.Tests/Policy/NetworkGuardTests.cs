using System.Net;
using ChronoGuard.Policy;

namespace ChronoGuard.Tests.Policy;

/// <summary>The guard judges IPv6 addresses as themselves and by every IPv4 address a transition form carries.</summary>
public sealed class NetworkGuardTests
{
    private static readonly NetworkGuard Guard = new(allowPrivate: false, [], [443], requireSniMatch: true);
    private static readonly NetworkGuard Permissive = new(allowPrivate: true, [], [443], requireSniMatch: true);

    private const string P = Reasons.PrivateDestination;
    private const string M = Reasons.MetadataDestination;

    [Theory]
    // IPv4-mapped ::ffff:a.b.c.d
    [InlineData("::ffff:127.0.0.1", P)]
    [InlineData("::ffff:10.0.0.1", P)]
    [InlineData("::ffff:169.254.169.254", M)]
    [InlineData("::ffff:8.8.8.8", null)]
    // IPv4-compatible ::a.b.c.d (the reported bypass) and its neighbours
    [InlineData("::127.0.0.1", P)]
    [InlineData("::10.1.2.3", P)]
    [InlineData("::192.168.1.1", P)]
    [InlineData("::169.254.169.254", M)]
    [InlineData("::8.8.8.8", null)]
    [InlineData("::", P)]
    [InlineData("::1", P)]
    [InlineData("::2", P)]
    // NAT64 64:ff9b::/96 and the local-use 64:ff9b:1::/48
    [InlineData("64:ff9b::7f00:1", P)]
    [InlineData("64:ff9b::a9fe:a9fe", M)]
    [InlineData("64:ff9b::808:808", null)]
    [InlineData("64:ff9b:1::808:808", P)]
    [InlineData("64:ff9b:1:ffff::1", P)]
    [InlineData("64:ff9b:2::808:808", null)]
    // 6to4 2002:V4ADDR::/48
    [InlineData("2002:7f00:1::1", P)]
    [InlineData("2002:a9fe:a9fe::", M)]
    [InlineData("2002:c0a8:101::1", P)]
    [InlineData("2002:808:808::1", null)]
    // Teredo 2001:0::/32: client = the bit-inverted last 32 bits (~7f000001 = 80fffffe), server in bits 32..63
    [InlineData("2001:0:808:808:0:0:80ff:fffe", P)]
    [InlineData("2001:0:808:808:0:0:5601:5601", M)]
    [InlineData("2001:0:a00:1:0:0:f7f7:f7f7", P)]
    [InlineData("2001:0:808:808:0:0:f7f7:f7f7", null)]
    [InlineData("2001:1::80ff:fffe", null)]
    // ISATAP ...:0:5efe:a.b.c.d and ...:200:5efe:a.b.c.d
    [InlineData("2a00:1::5efe:7f00:1", P)]
    [InlineData("2a00:1::200:5efe:a00:1", P)]
    [InlineData("2a00:1::5efe:a9fe:a9fe", M)]
    [InlineData("2a00:1::5efe:808:808", null)]
    [InlineData("2a00:1::5eff:7f00:1", null)]
    // IPv6 ranges of their own
    [InlineData("fc00::1", P)]
    [InlineData("fdff:ffff::1", P)]
    [InlineData("fe80::1", P)]
    [InlineData("febf::1", P)]
    [InlineData("fec0::1", P)]
    [InlineData("ff02::1", P)]
    [InlineData("2001:db8::1", P)]
    [InlineData("3fff::1", P)]
    [InlineData("100::1", P)]
    [InlineData("fd00:ec2::254", M)]
    [InlineData("2a00:1450:4001::200e", null)]
    [InlineData("2606:4700::1111", null)]
    [InlineData("fbff::1", null)]
    // IPv4 neighbours
    [InlineData("127.0.0.1", P)]
    [InlineData("100.64.0.1", P)]
    [InlineData("100.128.0.1", null)]
    [InlineData("172.31.255.255", P)]
    [InlineData("172.32.0.0", null)]
    [InlineData("192.88.99.1", P)]
    [InlineData("255.255.255.255", P)]
    [InlineData("223.255.255.255", null)]
    [InlineData("100.100.100.200", M)]
    [InlineData("8.8.8.8", null)]
    public void Each_form_is_judged_by_the_address_it_reaches(string address, string? expected)
    {
        Assert.Equal(expected, Guard.Check(IPAddress.Parse(address)));
    }

    [Theory]
    [InlineData("::169.254.169.254")]
    [InlineData("2002:a9fe:a9fe::")]
    [InlineData("2001:0:808:808:0:0:5601:5601")]
    [InlineData("fd00:ec2::254")]
    public void Metadata_stays_blocked_with_allowPrivateDestinations(string address)
    {
        Assert.Equal(M, Permissive.Check(IPAddress.Parse(address)));
        Assert.Null(Permissive.Check(IPAddress.Parse("::127.0.0.1")));
    }

    [Fact]
    public void An_allowed_cidr_admits_the_host_in_either_family_form()
    {
        var guard = new NetworkGuard(false, [IPNetwork.Parse("10.1.0.0/16")], [443], true);
        Assert.Null(guard.Check(IPAddress.Parse("10.1.2.3")));
        Assert.Null(guard.Check(IPAddress.Parse("::ffff:10.1.2.3")));
        Assert.Equal(P, guard.Check(IPAddress.Parse("10.2.0.1")));
    }

    [Fact]
    public void A_literal_host_in_a_decision_is_judged_before_dns()
    {
        var policy = PolicyFixture.Compile("""{ "version": 1, "defaultAction": "allow", "agents": [ { "id": "x", "tokenSha256": "$TOKEN" } ] }""");
        var r = policy.Decide(policy.AgentsById["x"], new RequestFacts("::127.0.0.1"u8, 443, "CONNECT"u8, default, default, null, true), DateTimeOffset.UtcNow, 0);
        Assert.Equal((Decision.Block, P), (r.Decision, r.Reason));
    }
}
