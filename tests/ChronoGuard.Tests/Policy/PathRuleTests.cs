using ChronoGuard.Http;
using ChronoGuard.Policy;
using ChronoGuard.Proxy;
using ChronoGuard.Tests.Http;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Policy;

/// <summary>
/// Path and text rules as SPEC §4 states them, judged by the real gate on heads the real parser read:
/// the normalised path, both readings of path parameters, one case rule for every operator.
/// </summary>
public sealed class PathRuleTests
{
    private static string Policy(string rules, string defaultAction = "allow") => $$"""
        {
          "version": 1, "defaultAction": "{{defaultAction}}", "network": { "allowedPorts": [80] },
          "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
          "policies": [ { "name": "p", "rules": [ {{rules}} ] } ]
        }
        """;

    private static string Rule(string action, string field, string op, string value, string extra = "") =>
        $$"""{ "name": "r", "action": "{{action}}", "when": [ { "field": "{{field}}", "op": "{{op}}", "value": {{value}}{{extra}} } ] }""";

    public static TheoryData<string, string> DeniedShapes => new()
    {
        { "starts_with", "/%73ecret" }, { "starts_with", "//secret" }, { "starts_with", "/./secret" },
        { "starts_with", "/x/../secret" }, { "starts_with", "/secret;jsessionid=1" }, { "starts_with", "/a/..;/secret/x" },
        { "starts_with", "/x/..;/..;/secret" }, { "starts_with", "/%2Fsecret" }, { "starts_with", "/x/%2e%2e/secret" },
        { "regex", "/%61dmin/users" }, { "regex", "/admin;/users" }, { "regex", "/admin;x" }, { "regex", "//admin" },
        { "regex", "/admin/." }, { "regex", "/x/../admin" }, { "regex", "/x/%2E%2E/admin" }, { "regex", "/a/..;/admin" },
    };

    [Theory]
    [MemberData(nameof(DeniedShapes))]
    public void Attack_spellings_no_longer_pass_a_path_rule(string op, string path)
    {
        var value = op == "regex" ? "\"^/admin(/|$)\"" : "\"/secret\"";
        using var engines = new PolicyEngines(Policy(Rule("deny", "path", op, value)));
        var error = Heads.Request($"GET http://a.example{path} HTTP/1.1\r\nHost: a.example\r\n{PolicyEngines.Credentials()}\r\n", out var head);
        if (error != ParseError.None)
        {
            Assert.Equal(ParseError.BadPath, error); // refused before any policy step
            return;
        }

        Assert.Equal((Decision.PolicyViolation, "r"), Decide(engines, head));
    }

    [Theory]
    [InlineData("/public", "ALLOW")]
    [InlineData("/admin", "DENY")]
    [InlineData("/public;x", "ALLOW")]
    [InlineData("/public;/admin", "ALLOW")]
    [InlineData("/public/..;/admin", "DENY")]
    [InlineData("/..;/public", "DENY")]
    public void An_allow_rule_holds_only_when_both_readings_match(string path, string expected)
    {
        // allow /public/... (and nothing else): a path one origin reads as /public and another as /admin is not allowed.
        using var engines = new PolicyEngines(Policy(Rule("allow", "path", "regex", "\"^/public(/|$|;)\""), defaultAction: "deny"));
        Assert.Equal(ParseError.None, Heads.Request($"GET http://a.example{path} HTTP/1.1\r\nHost: a.example\r\n{PolicyEngines.Credentials()}\r\n", out var head));
        var (decision, _) = Decide(engines, head);
        Assert.Equal(expected, decision == Decision.Allow ? "ALLOW" : "DENY");
    }

    [Theory]
    [InlineData("path", "starts_with", "\"/secret\"", "/Secret", false)]
    [InlineData("path", "regex", "\"^/secret\"", "/SECRET", false)]
    [InlineData("path", "equals", "\"/secret\"", "/SeCrEt", false)]
    [InlineData("path", "regex", "\"^/secret\"", "/secret", true)]
    [InlineData("user_agent", "contains", "\"curl\"", "/", false)]
    [InlineData("user_agent", "regex", "\"curl\"", "/", false)]
    [InlineData("method", "equals", "\"post\"", "/", true)]
    [InlineData("method", "regex", "\"^post$\"", "/", true)]
    [InlineData("domain", "regex", "\"^a\\\\.example$\"", "/", true)]
    [InlineData("domain", "ends_with", "\".EXAMPLE\"", "/", true)]
    public void One_case_rule_for_every_operator(string field, string op, string value, string path, bool denied)
    {
        var request = $"POST http://A.Example{path} HTTP/1.1\r\nHost: A.Example\r\nUser-Agent: Curl/8\r\nContent-Length: 0\r\n{PolicyEngines.Credentials()}\r\n";
        using (var exact = new PolicyEngines(Policy(Rule("deny", field, op, value))))
        {
            Assert.Equal(ParseError.None, Heads.Request(request, out var head));
            Assert.Equal(denied, Decide(exact, head).Decision == Decision.PolicyViolation);
        }

        if (field is "path" or "user_agent")
        {
            using var ignoring = new PolicyEngines(Policy(Rule("deny", field, op, value, ", \"ignoreCase\": true")));
            Assert.Equal(ParseError.None, Heads.Request(request, out var head));
            Assert.Equal(Decision.PolicyViolation, Decide(ignoring, head).Decision);
        }
    }

    [Fact]
    public void Path_rules_never_see_the_query()
    {
        using var engines = new PolicyEngines(Policy(Rule("deny", "path", "contains", "\"secret\"")));
        Assert.Equal(ParseError.None, Heads.Request($"GET http://a.example/public?file=secret HTTP/1.1\r\nHost: a.example\r\n{PolicyEngines.Credentials()}\r\n", out var head));
        Assert.Equal(Decision.Allow, Decide(engines, head).Decision);
        Assert.Equal(ParseError.None, Heads.Request($"GET http://a.example/secret?x HTTP/1.1\r\nHost: a.example\r\n{PolicyEngines.Credentials()}\r\n", out head));
        Assert.Equal(Decision.PolicyViolation, Decide(engines, head).Decision);
    }

    [Theory]
    [InlineData("port", "\"80\"")]
    [InlineData("source_ip", "\"127.0.0.1\"")]
    [InlineData("hour", "\"9\"")]
    public void IgnoreCase_on_a_field_without_case_is_a_load_error(string field, string value)
    {
        var error = PolicyFixture.LoadError(Policy(Rule("deny", field, "equals", value, ", \"ignoreCase\": true")).Replace("$TOKEN", PolicyFixture.TokenSha, StringComparison.Ordinal));
        Assert.Contains("$.policies[0].rules[0].when[0].ignoreCase: applies to text fields only", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("equals", "\"/%73ecret\"", "holds \"%73\"")]
    [InlineData("starts_with", "\"//secret\"", "contains \"//\"")]
    [InlineData("contains", "\"/x/../\"", "contains \"/../\"")]
    [InlineData("in", "[\"/a\", \"/b?c=1\"]", "contains \"?\"")]
    [InlineData("equals", "\"secret\"", "lacks the leading")]
    [InlineData("not_equals", "\"/admin/..\"", "ends in a dot segment")]
    [InlineData("starts_with", "\"/a%2fb\"", "holds \"%2f\"")]
    [InlineData("ends_with", "\"%zz\"", "holds invalid percent-encoding")]
    public void A_path_value_no_normalised_path_can_match_is_a_load_error(string op, string value, string why)
    {
        var error = PolicyFixture.LoadError(Policy(Rule("deny", "path", op, value)));
        Assert.Contains("$.policies[0].rules[0].when[0].value: rule \"r\": ", error, StringComparison.Ordinal);
        Assert.Contains("can never match: rules see the normalised path without the query, which never " + why, error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("starts_with", "\"/admin/.\"")]
    [InlineData("contains", "\"%3B\"")]
    [InlineData("ends_with", "\".json\"")]
    [InlineData("contains", "\"admin\"")]
    [InlineData("equals", "\"/a;b/c\"")]
    public void Path_values_a_normalised_path_can_hold_load(string op, string value) =>
        Assert.NotNull(PolicyFixture.Compile(Policy(Rule("deny", "path", op, value))));

    private static (Decision Decision, string? Rule) Decide(PolicyEngines engines, HttpHead head)
    {
        var gate = new PolicyGate(engines.Engine, TimeProvider.System);
        var result = gate.Decide(new ConnectionInfo(1, new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 1)), HttpConnection.Describe(head, null)).Result;
        return (result.Decision, result.Rule);
    }
}
