using System.Text;
using ChronoGuard.Policy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Policy;

/// <summary>
/// A runtime grant (SPEC §9) in the decision itself: it lifts only the defaultAction step, for its
/// agent and names, until it expires, never a block, a rule or the network guard; the DNS guard's
/// question follows it; and the deny path with grants in the table allocates nothing.
/// </summary>
public sealed class RuntimeGrantDecisionTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 5, 10, 0, 0, TimeSpan.Zero);

    private const string Json = """
        { "version": 1, "defaultAction": "deny",
          "network": { "allowedPorts": [443] },
          "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] }, { "id": "other", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
          "policies": [ { "name": "p", "allowedDomains": ["allowed.test"], "blockedDomains": ["blocked.test", "*.blocked.test"],
                          "rules": [ { "name": "no-admin", "action": "deny", "when": [ { "field": "domain", "op": "equals", "value": "ruled.test" } ] } ] } ] }
        """;

    private static (CompiledPolicy Policy, RuntimeGrantTable Table) Compile(params RuntimeGrant[] grants)
    {
        var policy = PolicyFixture.Compile(Json);
        var table = new RuntimeGrantTable();
        table.Publish(grants);
        policy.RuntimeGrants = table;
        return (policy, table);
    }

    private static RuntimeGrant Grant(string agent, params string[] domains) =>
        new("g-1", agent, domains, Now.AddHours(1), "INC-1", "ops-alice", Now);

    private static DecisionResult Decide(CompiledPolicy policy, string agent, string host, int port = 443, DateTimeOffset? at = null) =>
        policy.Decide(policy.AgentsById[agent], new RequestFacts(Encoding.ASCII.GetBytes(host), port, "CONNECT"u8, default, default, null, true), at ?? Now, 0);

    [Theory]
    [InlineData("granted.test", true)]
    [InlineData("GRANTED.test.", true)]
    [InlineData("a.granted.test", false)]
    [InlineData("notgranted.test", false)]
    [InlineData("x.wild.test", true)]
    [InlineData("a.b.wild.test", true)]
    [InlineData("wild.test", false)]
    [InlineData("xwild.test", false)]
    [InlineData("blocked.test", false)]
    [InlineData("a.blocked.test", false)]
    [InlineData("ruled.test", false)]
    public void A_grant_allows_only_what_the_default_would_refuse_and_only_its_names(string host, bool allowed)
    {
        var (policy, _) = Compile(Grant("bot", "granted.test", "*.wild.test", "blocked.test", "*.blocked.test", "ruled.test"));
        var result = Decide(policy, "bot", host);
        Assert.Equal(allowed, result.IsAllow);
        if (allowed)
        {
            Assert.Equal("grant:INC-1", result.Reason);
        }
        else
        {
            Assert.NotEqual(Decision.Allow, result.Decision);
        }
    }

    [Fact]
    public void A_grant_is_its_agents_until_it_expires_and_never_opens_a_port_or_a_guarded_address()
    {
        var (policy, table) = Compile(Grant("bot", "granted.test", "10.1.2.3"));
        Assert.True(Decide(policy, "bot", "granted.test").IsAllow);
        Assert.Equal(("DENY", "default_deny"), (Decide(policy, "other", "granted.test").Decision.ToString().ToUpperInvariant(), Decide(policy, "other", "granted.test").Reason));
        Assert.False(Decide(policy, "bot", "granted.test", at: Now.AddHours(1)).IsAllow);
        Assert.Equal(Reasons.PortNotAllowed, Decide(policy, "bot", "granted.test", port: 8080).Reason);
        Assert.Equal(Decision.Block, Decide(policy, "bot", "10.1.2.3").Decision);

        // The DNS guard's question follows the table.
        Assert.True(policy.CouldAllowName(policy.AgentsById["bot"], "granted.test"u8, Now));
        Assert.False(policy.CouldAllowName(policy.AgentsById["other"], "granted.test"u8, Now));
        table.Publish([]);
        Assert.False(Decide(policy, "bot", "granted.test").IsAllow);
        Assert.False(policy.CouldAllowName(policy.AgentsById["bot"], "granted.test"u8, Now));
    }

    [Fact]
    public void The_default_path_with_grants_in_the_table_allocates_nothing()
    {
        var grants = Enumerable.Range(0, 50).Select(i => new RuntimeGrant($"g-{i}", i % 2 == 0 ? "bot" : "other", [$"h{i}.test", $"*.w{i}.test"], Now.AddHours(1), "r", "a", Now)).ToArray();
        var (policy, _) = Compile(grants);
        var bot = policy.AgentsById["bot"];
        byte[][] hosts = [Encoding.ASCII.GetBytes("h48.test"), Encoding.ASCII.GetBytes("x.w2.test"), Encoding.ASCII.GetBytes("nowhere.test"), Encoding.ASCII.GetBytes("h1.test")];
        var allowed = 0;
        var allocated = Allocations.Least(() =>
        {
            foreach (var host in hosts)
            {
                allowed += policy.Decide(bot, new RequestFacts(host, 443, "CONNECT"u8, default, default, null, true), Now, 0).IsAllow ? 1 : 0;
            }
        });
        Assert.Equal(0, allocated);
        Assert.True(allowed > 0);
    }
}
