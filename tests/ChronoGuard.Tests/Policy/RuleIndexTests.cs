using System.Diagnostics;
using System.Text;
using ChronoGuard.Policy;

namespace ChronoGuard.Tests.Policy;

/// <summary>
/// Decide() skips rules whose indexed domain condition no pattern matched. A naive reference walks
/// every rule in priority order; on random policies and hosts both must reach the same outcome.
/// </summary>
public sealed class RuleIndexTests
{
    private static readonly string[] Labels = ["a", "b", "api", "x1", "corp", "dev", "mail", "cdn"];
    private static readonly string[] Tlds = ["test", "example", "org"];

    private static string Host(Random r)
    {
        var parts = Enumerable.Range(0, r.Next(1, 4)).Select(_ => Labels[r.Next(Labels.Length)]).Append(Tlds[r.Next(Tlds.Length)]);
        var host = string.Join('.', parts);
        return r.Next(6) switch
        {
            0 => host.ToUpperInvariant(),
            1 => host + ".",
            _ => host,
        };
    }

    private static string Condition(Random r)
    {
        var host = Host(r).TrimEnd('.');
        var suffix = host[host.IndexOf('.', StringComparison.Ordinal)..];
        return r.Next(9) switch
        {
            0 => $$"""{ "field": "domain", "op": "equals", "value": "{{host}}" }""",
            1 => $$"""{ "field": "domain", "op": "in", "value": ["{{host}}", "{{Host(r).TrimEnd('.')}}"] }""",
            2 => $$"""{ "field": "domain", "op": "ends_with", "value": "{{suffix}}" }""",
            3 => $$"""{ "field": "domain", "op": "ends_with", "value": "{{suffix[1..]}}" }""",
            4 => $$"""{ "field": "domain", "op": "contains", "value": "{{Labels[r.Next(Labels.Length)]}}" }""",
            5 => $$"""{ "field": "domain", "op": "starts_with", "value": "{{Labels[r.Next(Labels.Length)]}}" }""",
            6 => $$"""{ "field": "domain", "op": "regex", "value": "^{{Labels[r.Next(Labels.Length)]}}\\." }""",
            7 => $$"""{ "field": "domain", "op": "not_equals", "value": "{{host}}" }""",
            _ => $$"""{ "field": "port", "op": "equals", "value": {{(r.Next(2) == 0 ? 443 : 8443)}} }""",
        };
    }

    [Fact]
    public void Indexed_rules_decide_exactly_like_a_walk_over_every_rule()
    {
        var r = new Random(20261122);
        var now = new DateTimeOffset(2026, 11, 25, 10, 0, 0, TimeSpan.Zero);
        var checkedDecisions = 0;
        var indexedRules = 0;
        for (var round = 0; round < 40; round++)
        {
            var rules = Enumerable.Range(0, r.Next(1, 40)).Select(i =>
            {
                var action = r.Next(3) switch { 0 => "deny", 1 => "allow", _ => "log" };
                var when = string.Join(", ", Enumerable.Range(0, r.Next(1, 3)).Select(_ => Condition(r)));
                return $$"""{ "name": "r{{i}}", "priority": {{r.Next(100)}}, "action": "{{action}}", "when": [ {{when}} ] }""";
            });
            var policy = PolicyFixture.Compile($$"""
                {
                  "version": 1,
                  "network": { "allowedPorts": [443, 8443] },
                  "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
                  "policies": [ { "name": "p", "allowedDomains": ["*.example", "corp.test"], "rules": [ {{string.Join(",\n", rules)}} ] } ]
                }
                """);
            var bot = policy.AgentsById["bot"];
            var compiled = bot.Order[0];
            indexedRules += compiled.Rules.Count(rule => rule.Indexed);

            for (var i = 0; i < 250; i++)
            {
                var host = Host(r);
                var port = r.Next(2) == 0 ? 443 : 8443;
                var facts = new RequestFacts(Encoding.ASCII.GetBytes(host), port, "CONNECT"u8, default, default, null, true);
                var actual = policy.Decide(bot, facts, now, Stopwatch.GetTimestamp());

                // The reference: the first deny/allow rule that holds decides; log rules only annotate.
                (Decision Decision, string? Rule)? expected = null;
                string? logged = null;
                foreach (var rule in compiled.Rules)
                {
                    var holds = true;
                    foreach (var c in rule.When)
                    {
                        holds &= c.Matches(facts, 0, eitherReading: rule.Action != RuleAction.Allow);
                    }

                    if (!holds)
                    {
                        continue;
                    }

                    if (rule.Action == RuleAction.Log)
                    {
                        logged ??= rule.Name;
                        continue;
                    }

                    expected = rule.Action == RuleAction.Deny ? (Decision.PolicyViolation, rule.Name) : (Decision.Allow, rule.Name);
                    break;
                }

                var bare = host.TrimEnd('.').ToLowerInvariant();
                expected ??= (bare.EndsWith(".example", StringComparison.Ordinal) || bare == "corp.test" ? Decision.Allow : Decision.Deny, logged);
                Assert.True(expected.Value == (actual.Decision, actual.Rule), $"round {round}, host {host}:{port}: expected {expected}, got {actual.Decision} {actual.Rule}");
                checkedDecisions++;
            }
        }

        Assert.Equal(40 * 250, checkedDecisions);
        Assert.True(indexedRules > 100, $"only {indexedRules} rules were indexed: the test would not exercise the index");
    }
}
