using System.Diagnostics;
using System.Net;
using System.Text;
using ChronoGuard.Policy;

namespace ChronoGuard.Tests.Policy;

/// <summary>Each step of SPEC §4's decision precedence, in order, on a compiled policy.</summary>
public sealed class DecisionPrecedenceTests
{
    // Wednesday 2026-11-25 10:00 UTC = 11:00 in Berlin.
    private static readonly DateTimeOffset Wednesday = new(2026, 11, 25, 10, 0, 0, TimeSpan.Zero);

    private const string Json = """
        {
          "version": 1, "defaultAction": "deny",
          "network": { "allowedPorts": [443, 80] },
          "agents": [
            { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["team", "org"] },
            { "id": "sleepy", "tokenSha256": "$TOKEN", "status": "suspended", "policies": ["team"] }
          ],
          "policies": [
            { "name": "org", "priority": 500, "blockedDomains": ["*.pastebin.com"], "allowedDomains": ["late.example"],
              "timeRestrictions": { "timezone": "Europe/Berlin", "days": ["sat"], "ranges": [ { "start": "09:00", "end": "10:00" } ] } },
            { "name": "base", "priority": 400, "blockedDomains": ["evil.example"] },
            { "name": "team", "priority": 100, "extends": ["base"],
              "allowedDomains": ["*.github.com", "github.com", "evil.example", "a.pastebin.com"],
              "rateLimits": { "requestsPerMinute": 60, "burst": 2 },
              "maxNewDomainsPerHour": 3,
              "rules": [
                { "name": "audit-posts", "priority": 1, "action": "log", "when": [ { "field": "method", "op": "equals", "value": "POST" } ] },
                { "name": "no-raw", "priority": 2, "action": "deny", "when": [ { "field": "domain", "op": "equals", "value": "raw.github.com" } ] },
                { "name": "ua", "priority": 3, "action": "deny", "when": [ { "field": "user_agent", "op": "regex", "value": "^evil-bot/" } ] }
              ] }
          ],
          "grants": [
            { "agent": "bot", "domains": ["status.example.org"], "expires": "2026-11-25T12:00:00Z", "reason": "INC-1" },
            { "agent": "bot", "domains": ["old.example.org"], "expires": "2026-11-01T00:00:00Z", "reason": "INC-0" }
          ]
        }
        """;

    private readonly CompiledPolicy _policy = PolicyFixture.Compile(Json, maxTunnels: 2);

    private AgentPlan Bot => _policy.AgentsById["bot"];

    private DecisionResult Decide(string host, int port = 443, string method = "CONNECT", string ua = "", DateTimeOffset? at = null, string? source = null)
    {
        var facts = new RequestFacts(Encoding.ASCII.GetBytes(host), port, Encoding.ASCII.GetBytes(method), default, Encoding.ASCII.GetBytes(ua),
            source is null ? null : IPAddress.Parse(source), method == "CONNECT");
        return _policy.Decide(Bot, facts, at ?? Wednesday, Stopwatch.GetTimestamp());
    }

    [Fact]
    public void Unauthenticated_wrong_token_and_suspended()
    {
        Assert.Equal(AuthOutcome.Missing, _policy.Authenticate(default, out _));
        Assert.Equal(AuthOutcome.Invalid, _policy.Authenticate(PolicyFixture.Basic("bot", "wrong"), out _));
        Assert.Equal(AuthOutcome.Invalid, _policy.Authenticate(PolicyFixture.Basic("nobody"), out _));
        Assert.Equal(AuthOutcome.Suspended, _policy.Authenticate(PolicyFixture.Basic("sleepy"), out _));
        Assert.Equal(AuthOutcome.Ok, _policy.Authenticate(PolicyFixture.Basic("bot"), out var agent));
        Assert.Equal("bot", agent!.Id);
        // Bearer finds the agent by its token hash; the cache answers a repeat with the same agent.
        Assert.Equal(AuthOutcome.Ok, _policy.Authenticate("Bearer s3cret-token"u8, out agent));
        Assert.Equal(AuthOutcome.Ok, _policy.Authenticate(PolicyFixture.Basic("bot"), out var again));
        Assert.Same(_policy.AgentsById["bot"], again);
    }

    [Fact]
    public void Network_guard_comes_before_everything_after_identity()
    {
        Assert.Equal((Decision.Block, Reasons.PortNotAllowed), Outcome(Decide("status.example.org", port: 22)));
        Assert.Equal((Decision.Block, Reasons.PrivateDestination), Outcome(Decide("10.1.2.3")));
        Assert.Equal((Decision.Block, Reasons.MetadataDestination), Outcome(Decide("169.254.169.254", port: 80)));
        Assert.Equal((Decision.Block, Reasons.PrivateDestination), Outcome(_policy.CheckResolved(IPAddress.Parse("::ffff:127.0.0.1"))));
        Assert.Equal((Decision.Block, Reasons.MetadataDestination), Outcome(_policy.CheckResolved(IPAddress.Parse("fd00:ec2::254"))));
        Assert.True(_policy.CheckResolved(IPAddress.Parse("140.82.112.3")).IsAllow);
    }

    [Fact]
    public void Tunnel_budget_then_grants_then_rules()
    {
        Assert.True(Bot.Runtime.TryOpenTunnel(2));
        Assert.True(Bot.Runtime.TryOpenTunnel(2));
        Assert.Equal((Decision.RateLimited, Reasons.TunnelLimit), Outcome(Decide("status.example.org")));
        Bot.Runtime.CloseTunnel();
        Bot.Runtime.CloseTunnel();

        Assert.Equal((Decision.Allow, "grant:INC-1"), Outcome(Decide("status.example.org")));
        Assert.Equal((Decision.Deny, Reasons.DefaultDeny), Outcome(Decide("status.example.org", at: Wednesday.AddHours(3))));
        Assert.Equal((Decision.Deny, Reasons.DefaultDeny), Outcome(Decide("old.example.org")));

        var rule = Decide("raw.github.com");
        Assert.Equal((Decision.PolicyViolation, Reasons.RuleDeny, "no-raw", "team"), (rule.Decision, rule.Reason, rule.Rule, rule.Policy));
        Assert.Equal(Decision.PolicyViolation, Decide("api.github.com", ua: "evil-bot/1.0").Decision);
        var logged = Decide("api.github.com", port: 80, method: "POST");
        Assert.Equal((Decision.Allow, "audit-posts"), (logged.Decision, logged.Rule));
    }

    [Fact]
    public void Blocked_anywhere_in_the_agents_merged_set_wins_over_an_allow()
    {
        // evil.example: allowed by team, blocked by base (which team extends).
        Assert.Equal((Decision.Block, Reasons.DomainBlocked), Outcome(Decide("evil.example")));
        // a.pastebin.com: allowed by team, blocked by org (another of the agent's policies).
        Assert.Equal((Decision.Block, Reasons.DomainBlocked), Outcome(Decide("a.pastebin.com")));
    }

    [Fact]
    public void Allowed_domain_outside_its_window_says_when_it_opens()
    {
        // late.example is allowed by org only on Saturdays 09:00-10:00 Berlin time.
        var r = Decide("late.example");
        Assert.Equal(Decision.TimeRestricted, r.Decision);
        Assert.Equal(new DateTimeOffset(2026, 11, 28, 8, 0, 0, TimeSpan.Zero), r.RetryAt);
        Assert.Equal((long)(r.RetryAt!.Value - Wednesday).TotalSeconds, r.RetryAfterSeconds);
        Assert.True(Decide("late.example", at: new DateTimeOffset(2026, 11, 28, 8, 30, 0, TimeSpan.Zero)).IsAllow);
    }

    [Fact]
    public void Empty_bucket_and_spent_fan_out_quota_are_rate_limited_with_retry_after()
    {
        var registry = new AgentRegistry();
        var policy = PolicyFixture.Compile(Json, registry);
        var bot = policy.AgentsById["bot"];
        var now = Stopwatch.GetTimestamp();
        DecisionResult At(string host, long ticks) => policy.Decide(bot, new RequestFacts(Encoding.ASCII.GetBytes(host), 443, "CONNECT"u8, default, default, null, true), Wednesday, ticks);

        // Burst 2 at 60/min: two pass, the third waits about a second.
        Assert.True(At("a.github.com", now).IsAllow);
        Assert.True(At("a.github.com", now).IsAllow);
        var limited = At("a.github.com", now);
        Assert.Equal((Decision.RateLimited, Reasons.RateLimit, 1L), (limited.Decision, limited.Reason, limited.RetryAfterSeconds));
        // A second later one token has refilled.
        Assert.True(At("a.github.com", now + Stopwatch.Frequency).IsAllow);

        // Fan-out: three new domains this hour (a.github.com was the first), the fourth new one is refused.
        Assert.True(At("b.github.com", now + (10 * Stopwatch.Frequency)).IsAllow);
        Assert.True(At("c.github.com", now + (20 * Stopwatch.Frequency)).IsAllow);
        var fan = At("d.github.com", now + (30 * Stopwatch.Frequency));
        Assert.Equal((Decision.RateLimited, Reasons.FanOut), (fan.Decision, fan.Reason));
        Assert.Equal(3600, fan.RetryAfterSeconds);
        Assert.True(At("a.github.com", now + (40 * Stopwatch.Frequency)).IsAllow);
    }

    [Fact]
    public void Nothing_matched_falls_to_the_default_action()
    {
        Assert.Equal((Decision.Deny, Reasons.DefaultDeny), Outcome(Decide("unknown.example")));
        var open = PolicyFixture.Compile("""{ "version": 1, "defaultAction": "allow", "agents": [ { "id": "x", "tokenSha256": "$TOKEN" } ] }""");
        Assert.True(open.Decide(open.AgentsById["x"], new RequestFacts("a.b"u8, 443, "CONNECT"u8, default, default, null, true), Wednesday, 0).IsAllow);
    }

    [Fact]
    public void Egress_budget_spent_is_rate_limited_until_the_next_day()
    {
        var policy = PolicyFixture.Compile("""
            { "version": 1, "agents": [ { "id": "x", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
              "policies": [ { "name": "p", "allowedDomains": ["a.com"], "egressBytesPerDay": 1000 } ] }
            """);
        var x = policy.AgentsById["x"];
        x.Runtime.AddEgress(CompiledPolicy.Day(Wednesday), 1000);
        var r = policy.Decide(x, new RequestFacts("a.com"u8, 443, "CONNECT"u8, default, default, null, true), Wednesday, 0);
        Assert.Equal((Decision.RateLimited, Reasons.EgressBudget, 14 * 3600L), (r.Decision, r.Reason, r.RetryAfterSeconds));
        Assert.True(policy.Decide(x, new RequestFacts("a.com"u8, 443, "CONNECT"u8, default, default, null, true), Wednesday.AddDays(1), 0).IsAllow);
    }

    private static (Decision, string) Outcome(DecisionResult r) => (r.Decision, r.Reason);

    [Fact]
    public void Agent_domain_scope_gives_each_domain_its_own_bucket()
    {
        var policy = PolicyFixture.Compile("""
            {
              "version": 1,
              "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
              "policies": [ { "name": "p", "allowedDomains": ["*.test"], "rateLimitScope": "agent_domain",
                              "rateLimits": { "requestsPerMinute": 1, "burst": 1 } } ]
            }
            """);
        var bot = policy.AgentsById["bot"];
        var now = Stopwatch.GetTimestamp();
        Decision Take(string host) => policy.Decide(bot, new RequestFacts(Encoding.ASCII.GetBytes(host), 443, "CONNECT"u8, default, default, null, true), Wednesday, now).Decision;

        Assert.Equal(Decision.Allow, Take("a.test"));
        Assert.Equal(Decision.RateLimited, Take("a.test"));
        Assert.Equal(Decision.RateLimited, Take("A.TEST."));
        Assert.Equal(Decision.Allow, Take("b.test"));
        Assert.Equal(Decision.RateLimited, Take("b.test"));
    }
}
