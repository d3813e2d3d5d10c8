using System.Text;
using ChronoGuard.Policy;

namespace ChronoGuard.Tests.Policy;

/// <summary>Regex conditions match in linear time and never fail open.</summary>
public sealed class RegexConditionTests
{
    private static CompiledPolicy WithPathRule(string pattern) => PolicyFixture.Compile($$"""
        {
          "version": 1, "defaultAction": "allow", "network": { "allowedPorts": [80] },
          "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
          "policies": [ { "name": "p", "rules": [ { "name": "no-secrets", "action": "deny", "when": [ { "field": "path", "op": "regex", "value": "{{pattern}}" } ] } ] } ]
        }
        """);

    [Theory]
    [InlineData(0, "/secret")]
    [InlineData(30, "!secret")]
    [InlineData(5_000, "!secret")]
    [InlineData(5_000, "/x/secret/y")]
    [InlineData(20_000, "secret")]
    public void A_backtracking_shape_still_denies_every_path_with_secret(int repeat, string tail)
    {
        var policy = WithPathRule("^/(a+)+$|secret");
        var path = "/" + new string('a', repeat) + tail;
        var r = Decide(policy, path);
        Assert.Equal((Decision.PolicyViolation, "no-secrets"), (r.Decision, r.Rule));
    }

    [Theory]
    [InlineData(30)]
    [InlineData(5_000)]
    public void The_same_rule_lets_other_paths_through(int repeat)
    {
        var policy = WithPathRule("^/(a+)+$|secret");
        Assert.True(Decide(policy, "/" + new string('a', repeat) + "!").IsAllow);
        Assert.Equal(Decision.PolicyViolation, Decide(policy, "/" + new string('a', repeat)).Decision);
    }

    [Theory]
    [InlineData("(a)\\\\1", "backreference")]
    [InlineData("(?=a)b", "positive lookahead")]
    [InlineData("(?<!a)b", "negative lookbehind")]
    [InlineData("(?>a+)b", "atomic")]
    public void A_pattern_that_needs_backtracking_is_a_load_error_naming_the_rule(string pattern, string construct)
    {
        var error = PolicyFixture.LoadError($$"""
            { "version": 1, "policies": [ { "name": "p", "rules": [ { "name": "bad-one", "action": "deny", "when": [ { "field": "path", "op": "regex", "value": "{{pattern}}" } ] } ] } ] }
            """);
        Assert.Contains("$.policies[0].rules[0].when[0].value: rule \"bad-one\": the regex uses ", error, StringComparison.Ordinal);
        Assert.Contains(construct, error, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("RegexOptions", error, StringComparison.Ordinal);
    }

    [Fact]
    public void An_invalid_pattern_says_where_in_plain_words()
    {
        var error = PolicyFixture.LoadError("""{ "version": 1, "policies": [ { "name": "p", "rules": [ { "action": "deny", "when": [ { "field": "path", "op": "regex", "value": "a(b" } ] } ] } ] }""");
        Assert.EndsWith("rule \"p#0\": invalid regex at character 3: insufficient closing parentheses", error, StringComparison.Ordinal);
    }

    private static DecisionResult Decide(CompiledPolicy policy, string path) =>
        policy.Decide(policy.AgentsById["bot"], new RequestFacts("a.example"u8, 80, "GET"u8, Encoding.ASCII.GetBytes(path), default, null, false), DateTimeOffset.UtcNow, 0);
}
