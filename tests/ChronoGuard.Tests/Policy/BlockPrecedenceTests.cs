using System.Diagnostics;
using System.Text;
using ChronoGuard.Policy;

namespace ChronoGuard.Tests.Policy;

/// <summary>Blocked wins over every allow (SPEC §4), and a block names the policy that blocks.</summary>
public sealed class BlockPrecedenceTests
{
    private static readonly DateTimeOffset Wednesday = new(2026, 11, 25, 10, 0, 0, TimeSpan.Zero);

    private const string Json = """
        {
          "version": 1,
          "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["team", "org"] } ],
          "policies": [
            { "name": "org", "priority": 500, "blockedDomains": ["*.pastebin.com"] },
            { "name": "base", "priority": 400, "blockedDomains": ["evil.example"] },
            { "name": "team", "priority": 100, "extends": ["base"],
              "allowedDomains": ["ok.example", "weekend.example"],
              "timeRestrictions": { "timezone": "UTC", "days": ["sat"] },
              "rules": [
                { "name": "lift-paste", "priority": 1, "action": "allow", "when": [ { "field": "domain", "op": "ends_with", "value": ".pastebin.com" } ] },
                { "name": "lift-evil", "priority": 2, "action": "allow", "when": [ { "field": "domain", "op": "equals", "value": "evil.example" } ] },
                { "name": "any-path", "priority": 3, "action": "allow", "when": [ { "field": "port", "op": "equals", "value": 8080 } ] },
                { "name": "unlisted", "priority": 4, "action": "allow", "when": [ { "field": "domain", "op": "equals", "value": "unlisted.example" } ] }
              ] }
          ],
          "grants": [ { "agent": "bot", "domains": ["x.pastebin.com"], "expires": "2026-11-26T00:00:00Z", "reason": "INC-9" } ]
        }
        """;

    private readonly CompiledPolicy _policy = PolicyFixture.Compile(Json);

    private DecisionResult Decide(string host, int port = 443, DateTimeOffset? at = null) =>
        _policy.Decide(_policy.AgentsById["bot"], new RequestFacts(Encoding.ASCII.GetBytes(host), port, "CONNECT"u8, default, default, null, true), at ?? Wednesday, Stopwatch.GetTimestamp());

    [Theory]
    [InlineData("a.pastebin.com", "org")]      // an allow rule in a team policy cannot lift an org-wide block
    [InlineData("A.PasteBin.com.", "org")]
    [InlineData("evil.example", "base")]       // nor a block it inherits; the record names the policy whose list blocks
    public void An_allow_rule_never_lifts_a_block(string host, string blockedBy)
    {
        var r = Decide(host);
        Assert.Equal((Decision.Block, Reasons.DomainBlocked, blockedBy), (r.Decision, r.Reason, r.Policy));
    }

    [Fact]
    public void A_grant_comes_before_the_policy_walk_and_so_before_blocked_lists()
    {
        Assert.Equal((Decision.Allow, "grant:INC-9"), (Decide("x.pastebin.com").Decision, Decide("x.pastebin.com").Reason));
        Assert.Equal(Decision.Block, Decide("x.pastebin.com", at: Wednesday.AddDays(2)).Decision);
    }

    [Fact]
    public void An_allow_rule_stands_in_for_the_allowed_list_but_not_for_the_window()
    {
        // Wednesday: team's window (Saturdays) is closed, for listed domains and rule-allowed ones alike.
        Assert.Equal(Decision.TimeRestricted, Decide("ok.example").Decision);
        Assert.Equal((Decision.TimeRestricted, "unlisted"), (Decide("unlisted.example").Decision, Decide("unlisted.example").Rule));
        var saturday = new DateTimeOffset(2026, 11, 28, 10, 0, 0, TimeSpan.Zero);
        var allowed = Decide("unlisted.example", at: saturday);
        Assert.Equal((Decision.Allow, Reasons.RuleAllow, "unlisted", "team"), (allowed.Decision, allowed.Reason, allowed.Rule, allowed.Policy));
        Assert.Equal(Decision.Block, Decide("evil.example", at: saturday).Decision);
        Assert.Equal(Decision.Deny, Decide("other.example", at: saturday).Decision);
    }
}
