using System.Text;
using ChronoGuard.Policy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Policy;

/// <summary>SPEC §10: which names the DNS guard may resolve for an agent, read from the same compiled policy as every decision.</summary>
public sealed class DnsQuestionPolicyTests
{
    private const string Json = """
        { "version": 1,
          "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] }, { "id": "off", "tokenSha256": "$TOKEN", "status": "suspended", "policies": ["p"] },
                      { "id": "open", "tokenSha256": "$TOKEN", "policies": ["child"] } ],
          "policies": [
            { "name": "p", "allowedDomains": ["api.example.com", "*.github.com", "git.example.com:22"],
              "blockedDomains": ["gist.github.com", "api.example.com:8443"],
              "timeRestrictions": { "timezone": "UTC", "days": ["sun"], "ranges": [{ "start": "00:00", "end": "00:01" }] },
              "rateLimits": { "requestsPerMinute": 1, "burst": 1 },
              "rules": [
                { "name": "r", "action": "allow", "when": [ { "field": "domain", "op": "ends_with", "value": ".ruled.example" }, { "field": "method", "op": "equals", "value": "GET" } ] },
                { "name": "no-domain", "action": "allow", "when": [ { "field": "method", "op": "equals", "value": "GET" } ] } ] },
            { "name": "base", "dnsTypes": ["TXT", "TYPE99"] },
            { "name": "child", "extends": ["base"], "allowedDomains": ["x.example"] } ],
          "grants": [ { "agent": "bot", "domains": ["granted.example", "gist.github.com"], "expires": "2099-01-01T00:00:00Z", "reason": "T-1" },
                      { "agent": "bot", "domains": ["expired.example"], "expires": "2000-01-01T00:00:00Z", "reason": "T-0" } ] }
        """;

    [Theory]
    [InlineData("api.example.com", true)] // time window closed and bucket empty: ignored
    [InlineData("API.Example.COM.", true)]
    [InlineData("a.b.github.com", true)]
    [InlineData("github.com", false)] // the wildcard does not cover its parent
    [InlineData("gist.github.com", true)] // blocked, but granted: a grant lifts a block as in Decide
    [InlineData("git.example.com", true)] // a port-scoped pattern
    [InlineData("granted.example", true)]
    [InlineData("expired.example", false)]
    [InlineData("x.ruled.example", true)] // an allow rule's domain condition, its other conditions ignored
    [InlineData("ruled.example", false)]
    [InlineData("data-c2VjcmV0.attacker.example", false)]
    public void A_name_may_be_resolved_when_the_agents_policies_could_allow_it(string name, bool allowed)
    {
        using var engines = new PolicyEngines(Json);
        var policy = engines.Engine.Current;
        Assert.Equal(allowed, policy.CouldAllowName(policy.AgentsById["bot"], Encoding.ASCII.GetBytes(name), DateTimeOffset.UtcNow));
        Assert.False(policy.CouldAllowName(policy.AgentsById["off"], Encoding.ASCII.GetBytes(name), DateTimeOffset.UtcNow));
    }

    [Fact]
    public void A_block_without_a_port_refuses_the_name_and_a_port_scoped_one_does_not()
    {
        using var engines = new PolicyEngines("""
            { "version": 1, "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
              "policies": [ { "name": "p", "allowedDomains": ["*.example.com"], "blockedDomains": ["bad.example.com", "half.example.com:8443"] } ] }
            """);
        var policy = engines.Engine.Current;
        var bot = policy.AgentsById["bot"];
        Assert.False(policy.CouldAllowName(bot, "bad.example.com"u8, DateTimeOffset.UtcNow));
        Assert.True(policy.CouldAllowName(bot, "half.example.com"u8, DateTimeOffset.UtcNow));
    }

    [Fact]
    public void DefaultAction_allow_lets_every_unblocked_name_resolve()
    {
        using var engines = new PolicyEngines("""
            { "version": 1, "defaultAction": "allow", "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
              "policies": [ { "name": "p", "blockedDomains": ["bad.example.com"] } ] }
            """);
        var policy = engines.Engine.Current;
        Assert.True(policy.CouldAllowName(policy.AgentsById["bot"], "anything.example"u8, DateTimeOffset.UtcNow));
        Assert.False(policy.CouldAllowName(policy.AgentsById["bot"], "bad.example.com"u8, DateTimeOffset.UtcNow));
    }

    [Fact]
    public void DnsTypes_are_inherited_and_the_defaults_need_no_listing()
    {
        using var engines = new PolicyEngines(Json);
        var policy = engines.Engine.Current;
        foreach (ushort type in new ushort[] { 1, 5, 28, 64, 65 })
        {
            Assert.True(CompiledPolicy.AllowsDnsType(policy.AgentsById["bot"], type));
        }

        Assert.False(CompiledPolicy.AllowsDnsType(policy.AgentsById["bot"], 16));
        Assert.True(CompiledPolicy.AllowsDnsType(policy.AgentsById["open"], 16));
        Assert.True(CompiledPolicy.AllowsDnsType(policy.AgentsById["open"], 99));
        Assert.False(CompiledPolicy.AllowsDnsType(policy.AgentsById["open"], 255));
    }

    [Fact]
    public void An_unknown_dns_type_is_a_load_error_naming_its_path()
    {
        using var dir = new TempDir();
        var file = dir.File("p.json");
        File.WriteAllText(file, """{ "version": 1, "policies": [ { "name": "p", "dnsTypes": ["TXT", "TEXT"] } ] }""");
        var outcome = new PolicyEngine(file, 10, TimeProvider.System).Reload();
        Assert.False(outcome.Ok);
        Assert.Contains("$.policies[0].dnsTypes[1]", outcome.Error, StringComparison.Ordinal);
        Assert.Contains("\"TEXT\" is not a DNS type", outcome.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void Deciding_a_question_allocates_nothing()
    {
        using var engines = new PolicyEngines(Json);
        var policy = engines.Engine.Current;
        var bot = policy.AgentsById["bot"];
        var now = DateTimeOffset.UtcNow;
        Assert.Equal(0, Allocations.Least(() =>
        {
            policy.CouldAllowName(bot, "a.b.github.com"u8, now);
            policy.CouldAllowName(bot, "x.ruled.example"u8, now);
            policy.CouldAllowName(bot, "nope.example"u8, now);
        }));
    }
}
