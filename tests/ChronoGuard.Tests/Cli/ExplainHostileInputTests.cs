using ChronoGuard.Sidecar.Cli;
using ChronoGuard.Tests.Policy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Cli;

/// <summary><c>policy explain</c> refuses what the proxy's parser refuses, and judges paths as the proxy does.</summary>
public sealed class ExplainHostileInputTests
{
    private const string Json = """
        {
          "version": 1, "defaultAction": "allow", "network": { "allowedPorts": [80, 443] },
          "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
          "policies": [ { "name": "p", "blockedDomains": ["blocked.cg.test"],
            "rules": [ { "name": "no-admin", "action": "deny", "when": [ { "field": "path", "op": "regex", "value": "^/admin(/|$)" } ] } ] } ]
        }
        """;

    [Theory]
    [InlineData(".blocked.cg.test:443")]
    [InlineData("blocked..cg.test:443")]
    [InlineData("blocked.cg.test..:443")]
    [InlineData("2130706433:80")]
    [InlineData("blocked.cg.test")]
    public void A_target_the_proxy_refuses_is_400_bad_target_before_any_policy_step(string target)
    {
        var (code, text) = Explain("--target", target);
        Assert.Equal(1, code);
        Assert.EndsWith("decision: DENY (400 bad_target)", text.TrimEnd(), StringComparison.Ordinal);
        Assert.DoesNotContain("policy p", text, StringComparison.Ordinal);
    }

    [Fact]
    public void The_valid_spelling_is_blocked()
    {
        var (code, text) = Explain("--target", "blocked.cg.test.:443");
        Assert.Equal(1, code);
        Assert.EndsWith("decision: BLOCK (403 domain_blocked, policy p)", text.TrimEnd(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/%61dmin/users", "DENY")]
    [InlineData("//admin", "DENY")]
    [InlineData("/admin;/users", "DENY")]
    [InlineData("/x/../admin?q", "DENY")]
    [InlineData("/x/%2e%2e/admin", "BAD")]
    [InlineData("/Admin", "ALLOW")]
    public void Paths_are_normalised_and_judged_on_both_readings(string path, string expected)
    {
        var (code, text) = Explain("--target", "a.example:80", "--method", "GET", "--path", path);
        var last = text.TrimEnd()[(text.TrimEnd().LastIndexOf('\n') + 1)..];
        switch (expected)
        {
            case "DENY":
                Assert.Equal((1, "decision: POLICY_VIOLATION (403 rule_deny, policy p, rule no-admin)"), (code, last));
                break;
            case "BAD":
                Assert.Equal((1, "decision: DENY (400 bad_path)"), (code, last));
                break;
            default:
                Assert.Equal((0, "decision: ALLOW (200 default_allow); addresses not judged (no --resolve)"), (code, last));
                break;
        }
    }

    private static (int Code, string Text) Explain(params string[] options)
    {
        using var dir = new TempDir();
        var file = dir.File("policy.json");
        File.WriteAllText(file, Json.Replace("$TOKEN", PolicyFixture.TokenSha, StringComparison.Ordinal));
        var stdout = new StringWriter();
        var code = PolicyCommand.Run(["explain", file, "--agent", "bot", .. options], stdout, TextWriter.Null);
        return (code, stdout.ToString());
    }
}
