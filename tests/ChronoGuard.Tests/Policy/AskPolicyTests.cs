using System.Text;
using ChronoGuard.Policy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Policy;

/// <summary>
/// <c>ask</c> in the decision (SPEC §9): only what nothing allows or blocks becomes
/// <c>approval_required</c>; the network guard, blocks, rules and the port step decide first; a grant
/// (an approval is one) lifts it; <c>unlisted</c> asks for the agents under that policy (inherited
/// through <c>extends</c>), and wins over <c>defaultAction</c>; the DNS guard answers what may be asked.
/// </summary>
public sealed class AskPolicyTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 5, 10, 0, 0, TimeSpan.Zero);

    private static CompiledPolicy Compile(string defaultAction, string unlisted = "", int maxTunnels = 512)
    {
        using var dir = new TempDir();
        var path = dir.File("policy.json");
        File.WriteAllText(path, $$"""
            { "version": 1, "defaultAction": "{{defaultAction}}",
              "network": { "allowedPorts": [443] },
              "agents": [ { "id": "bot", "tokenSha256": "{{PolicyFixture.TokenSha}}", "policies": ["child"] },
                          { "id": "plain", "tokenSha256": "{{PolicyFixture.TokenSha}}", "policies": ["other"] } ],
              "policies": [ { "name": "p", "allowedDomains": ["allowed.test"], "blockedDomains": ["blocked.test"]{{unlisted}},
                              "rules": [ { "name": "no-admin", "action": "deny", "when": [ { "field": "domain", "op": "equals", "value": "ruled.test" } ] } ] },
                            { "name": "child", "extends": ["p"], "egressBytesPerDay": 1000 },
                            { "name": "other", "allowedDomains": ["allowed.test"] } ] }
            """);
        return PolicyLoader.Load(path, new AgentRegistry(), maxTunnels, out _, inspectionConfigured: false, approvalsConfigured: true);
    }

    private static DecisionResult Decide(CompiledPolicy policy, string agent, string host, int port = 443) =>
        policy.Decide(policy.AgentsById[agent], new RequestFacts(Encoding.ASCII.GetBytes(host), port, "CONNECT"u8, default, default, null, true), Now, 0);

    [Theory]
    [InlineData("unlisted.test", 443, "approval_required")]
    [InlineData("allowed.test", 443, "allowed")]
    [InlineData("blocked.test", 443, "domain_blocked")]
    [InlineData("ruled.test", 443, "rule_deny")]
    [InlineData("unlisted.test", 8443, "port_not_allowed")]
    [InlineData("10.0.0.1", 443, "private_destination")]
    [InlineData("169.254.169.254", 443, "metadata_destination")]
    public void Only_what_nothing_allows_or_blocks_is_asked(string host, int port, string reason)
    {
        var result = Decide(Compile("ask"), "bot", host, port);
        Assert.Equal(reason, result.Reason);
        Assert.Equal(reason is "allowed", result.IsAllow);
    }

    [Fact]
    public void A_grant_for_the_host_turns_the_ask_into_an_allow_for_its_agent_only()
    {
        var policy = Compile("ask");
        var table = new RuntimeGrantTable();
        table.Publish([new RuntimeGrant("g-1", "bot", ["*.approved.test"], Now.AddHours(1), "approval p-1", "ops-alice", Now)]);
        policy.RuntimeGrants = table;
        Assert.Equal("grant:approval p-1", Decide(policy, "bot", "api.approved.test").Reason);
        Assert.Equal("approval_required", Decide(policy, "bot", "approved.test").Reason);
        Assert.Equal("approval_required", Decide(policy, "plain", "api.approved.test").Reason);
        Assert.Equal("domain_blocked", Decide(policy, "bot", "blocked.test").Reason);
    }

    [Theory]
    [InlineData("deny", "default_deny")]
    [InlineData("allow", "default_allow")]
    public void Unlisted_ask_asks_for_the_agents_under_the_policy_and_what_extends_it_whatever_defaultAction_says(string defaultAction, string others)
    {
        var policy = Compile(defaultAction, ", \"unlisted\": \"ask\"");
        Assert.True(policy.AgentsById["bot"].AsksUnlisted);
        Assert.Equal("approval_required", Decide(policy, "bot", "unlisted.test").Reason);
        Assert.False(policy.AgentsById["plain"].AsksUnlisted);
        Assert.Equal(others, Decide(policy, "plain", "unlisted.test").Reason);
    }

    [Fact]
    public void Budgets_refuse_before_anything_is_asked()
    {
        var policy = Compile("ask", maxTunnels: 1);
        var bot = policy.AgentsById["bot"];
        Assert.True(bot.Runtime.TryOpenTunnel(1));
        Assert.Equal("tunnel_limit", Decide(policy, "bot", "unlisted.test").Reason);
        bot.Runtime.CloseTunnel();

        bot.Runtime.AddEgress(CompiledPolicy.Day(Now), 1000);
        Assert.Equal("egress_budget", Decide(policy, "bot", "unlisted.test").Reason);
        Assert.Equal("approval_required", Decide(policy, "plain", "unlisted.test").Reason);
    }

    [Fact]
    public void The_dns_guard_answers_names_that_may_be_asked_for_but_never_blocked_ones()
    {
        var policy = Compile("deny", ", \"unlisted\": \"ask\"");
        Assert.True(policy.CouldAllowName(policy.AgentsById["bot"], "unlisted.test"u8, Now));
        Assert.False(policy.CouldAllowName(policy.AgentsById["bot"], "blocked.test"u8, Now));
        Assert.False(policy.CouldAllowName(policy.AgentsById["plain"], "unlisted.test"u8, Now));
    }

    [Fact]
    public void Ask_is_refused_where_nobody_could_approve_and_a_wrong_unlisted_value_names_its_path()
    {
        using var dir = new TempDir();
        var path = dir.File("policy.json");
        File.WriteAllText(path, """{ "version": 1, "defaultAction": "ask", "agents": [], "policies": [] }""");
        var error = PolicyLoader.TryLoad(path, new AgentRegistry(), 512).Error;
        Assert.Contains("$.defaultAction: \"ask\" holds requests until an operator approves them, which needs the admin API (set Admin:Listen", error, StringComparison.Ordinal);
        File.WriteAllText(path, """{ "version": 1, "defaultAction": "maybe", "agents": [], "policies": [] }""");
        Assert.Contains("$.defaultAction: must be \"allow\", \"deny\" or \"ask\" (got \"maybe\")", PolicyLoader.TryLoad(path, new AgentRegistry(), 512, approvalsConfigured: true).Error, StringComparison.Ordinal);
    }
}
