namespace ChronoGuard.Tests.Policy;

public sealed class PolicyLoaderTests
{
    [Theory]
    [InlineData("""{ "version": 2 }""", "$.version")]
    [InlineData("""{ "version": 1, "mode": "loud" }""", "$.mode")]
    [InlineData("""{ "version": 1, "policies": [ { "name": "a", "extends": ["b"] } ] }""", "$.policies[0].extends: unknown policy \"b\"")]
    [InlineData("""{ "version": 1, "policies": [ { "name": "a", "extends": ["b"] }, { "name": "b", "extends": ["a"] } ] }""", "cycle: a -> b -> a")]
    [InlineData("""{ "version": 1, "policies": [ { "name": "a", "allowedDomains": ["x.com"], "blockedDomains": ["X.com."] } ] }""", "both allowed and blocked")]
    [InlineData("""{ "version": 1, "policies": [ { "name": "a", "allowedDomains": ["a.*.com"] } ] }""", "$.policies[0].allowedDomains[0]")]
    [InlineData("""{ "version": 1, "policies": [ { "name": "a", "rules": [ { "action": "deny", "when": [ { "field": "port", "op": "regex", "value": "1" } ] } ] } ] }""", "$.policies[0].rules[0].when[0].op")]
    [InlineData("""{ "version": 1, "policies": [ { "name": "a", "rules": [ { "action": "deny", "when": [ { "field": "path", "op": "regex", "value": "(" } ] } ] } ] }""", "invalid regex")]
    [InlineData("""{ "version": 1, "policies": [ { "name": "a", "timeRestrictions": { "timezone": "Mars/Olympus" } } ] }""", "$.policies[0].timeRestrictions.timezone")]
    [InlineData("""{ "version": 1, "policies": [ { "name": "a", "timeRestrictions": { "timezone": "UTC", "ranges": [ { "start": "8:00", "end": "18:00" } ] } } ] }""", "ranges[0].start")]
    [InlineData("""{ "version": 1, "agents": [ { "id": "x", "tokenSha256": "abc", "policies": [] } ] }""", "$.agents[0].tokenSha256")]
    [InlineData("""{ "version": 1, "agents": [ { "id": "x", "tokenSha256": "$TOKEN", "policies": ["nope"] } ] }""", "$.agents[0].policies[0]: unknown policy")]
    [InlineData("""{ "version": 1, "grants": [ { "agent": "ghost", "domains": ["a.com"], "expires": "2026-01-01T00:00:00Z" } ] }""", "$.grants[0].agent")]
    [InlineData("""{ "version": 1, "policies": [ { "name": "a", "bogus": 1 } ] }""", "$.policies[0]")]
    [InlineData("""{ "version": 1, "policies": [ { "name": "a", "priority": "high" } ] }""", "$.policies[0].priority")]
    [InlineData("{ \"version\": 1,\n  \"policies\": [ { \"name\": \"a\" ", "line 2, column ")]
    public void Errors_name_the_file_the_json_path_and_the_problem(string json, string expected)
    {
        var message = PolicyFixture.LoadError(json);
        Assert.StartsWith("/", message);
        Assert.Contains("policy.json: ", message, StringComparison.Ordinal);
        Assert.Contains(expected, message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', message);
    }

    [Fact]
    public void Limits_are_enforced_at_load()
    {
        var rules = string.Join(",", Enumerable.Range(0, 101).Select(i => $$"""{ "name": "r{{i}}", "action": "log" }"""));
        Assert.Contains("101 rules; at most 100", PolicyFixture.LoadError($$"""{ "version": 1, "policies": [ { "name": "a", "rules": [{{rules}}] } ] }"""), StringComparison.Ordinal);
        var domains = string.Join(",", Enumerable.Range(0, 10_001).Select(i => $"\"d{i}.com\""));
        Assert.Contains("10001 domains; at most 10000", PolicyFixture.LoadError($$"""{ "version": 1, "policies": [ { "name": "a", "allowedDomains": [{{domains}}] } ] }"""), StringComparison.Ordinal);
        var conditions = string.Join(",", Enumerable.Range(0, 21).Select(_ => """{ "field": "port", "op": "equals", "value": 1 }"""));
        Assert.Contains("21 conditions; at most 20", PolicyFixture.LoadError($$"""{ "version": 1, "policies": [ { "name": "a", "rules": [ { "action": "log", "when": [{{conditions}}] } ] } ] }"""), StringComparison.Ordinal);
    }

    [Fact]
    public void Comments_and_trailing_commas_are_allowed_and_the_example_policy_compiles()
    {
        var policy = PolicyFixture.Compile("""
            // a comment
            { "version": 1, /* another */ "policies": [ { "name": "a", "allowedDomains": ["x.com",], }, ], }
            """);
        Assert.Single(policy.DeclaredPolicies);
        var example = Path.Combine(AppContext.BaseDirectory, "../../../../../examples/policy.json");
        Assert.NotNull(ChronoGuard.Policy.PolicyLoader.Load(example, new ChronoGuard.Policy.AgentRegistry(), 512, out var sha));
        Assert.Equal(64, sha.Length);
    }
}
