using ChronoGuard.Sidecar.Cli;
using ChronoGuard.Tests.Policy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Cli;

/// <summary><c>policy explain</c> and <c>policy check</c> on SPEC §7's keys: the inner decision, the credential by name, never the secret.</summary>
public sealed class InspectionPolicyCommandTests : IDisposable
{
    private const string Secret = "ghp_CliSecret-987654321";
    private const string At = "2026-11-25T10:00:00Z";

    private readonly TempDir _dir = new();

    public InspectionPolicyCommandTests() => File.WriteAllText(_dir.File("github.secret"), Secret + "\n");

    public void Dispose() => _dir.Dispose();

    private string Write(string credentialExtra = "", string inspectExtra = "", string domains = "\"api.example\"")
    {
        var path = _dir.File("policy.json");
        File.WriteAllText(path, $$"""
            {
              "version": 1, "defaultAction": "deny",
              "agents": [
                { "id": "bot", "tokenSha256": "{{PolicyFixture.TokenSha}}", "policies": ["p"] },
                { "id": "reader", "tokenSha256": "{{PolicyFixture.TokenSha}}", "policies": ["p"] }
              ],
              "policies": [ { "name": "p", "allowedDomains": ["api.example", "opaque.example"], "inspect": ["api.example"{{inspectExtra}}],
                "rules": [ { "name": "read-only", "action": "deny", "when": [ { "field": "method", "op": "not_in", "value": ["GET", "HEAD"] } ] } ] } ],
              "credentials": [ { "name": "github-api", "agents": ["bot"], "domains": [{{domains}}], "header": "Authorization",
                "value": "Bearer {secret}", "secretFile": "github.secret", "placeholder": "cg-placeholder-github", "require": true{{credentialExtra}} } ]
            }
            """);
        return path;
    }

    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = PolicyCommand.Run(args, stdout, stderr);
        Assert.DoesNotContain(Secret, stdout.ToString() + stderr, StringComparison.Ordinal);
        return (code, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public void Explain_on_an_inspected_host_shows_the_tunnel_the_inner_decision_and_the_credential_by_name()
    {
        var file = Write();

        var (code, text, _) = Run("explain", file, "--agent", "bot", "--target", "api.example:443", "--method", "GET", "--path", "/repos/a/b", "--at", At);

        Assert.Equal(0, code);
        Assert.Contains("tunnel: ALLOW (200 allowed), inspected", text, StringComparison.Ordinal);
        Assert.Contains("inspect: api.example is inspected", text, StringComparison.Ordinal);
        Assert.Contains("rule read-only (p) reads the inner request: left to the inner requests", text, StringComparison.Ordinal);
        Assert.Contains("inside the inspected tunnel: GET /repos/a/b", text, StringComparison.Ordinal);
        Assert.Contains("credential: github-api would be injected (Authorization replaced; secret from file:", text, StringComparison.Ordinal);
        Assert.EndsWith("decision: ALLOW (200 allowed, policy p, credential github-api); addresses not judged (no --resolve)", text.TrimEnd(), StringComparison.Ordinal);
    }

    [Fact]
    public void Explain_refuses_an_inner_write_by_its_rule_and_injects_nothing()
    {
        var (code, text, _) = Run("explain", Write(), "--agent", "bot", "--target", "api.example:443", "--method", "POST", "--path", "/repos/a/b/git/refs", "--at", At);

        Assert.Equal(1, code);
        Assert.Contains("tunnel: ALLOW", text, StringComparison.Ordinal);
        Assert.DoesNotContain("would be injected", text, StringComparison.Ordinal);
        Assert.EndsWith("decision: POLICY_VIOLATION (403 rule_deny, policy p, rule read-only)", text.TrimEnd(), StringComparison.Ordinal);
    }

    [Fact]
    public void Explain_names_the_window_that_stops_an_injection_and_an_agent_with_no_credential()
    {
        var file = Write(", \"timeRestrictions\": { \"timezone\": \"UTC\", \"ranges\": [ { \"start\": \"12:00\", \"end\": \"13:00\" } ] }");

        var closed = Run("explain", file, "--agent", "bot", "--target", "api.example:443", "--method", "GET", "--at", At);
        var reader = Run("explain", file, "--agent", "reader", "--target", "api.example:443", "--method", "GET", "--at", At);

        Assert.Equal(1, closed.Code);
        Assert.Contains("credential github-api: outside its time window (UTC)", closed.Out, StringComparison.Ordinal);
        Assert.EndsWith("decision: TIME_RESTRICTED (403 credential_window, policy p, credential github-api, retry at 2026-11-25T12:00:00Z)", closed.Out.TrimEnd(), StringComparison.Ordinal);
        Assert.Equal(0, reader.Code);
        Assert.Contains("credentials: none is bound to this agent and host", reader.Out, StringComparison.Ordinal);
    }

    [Fact]
    public void Explain_of_an_opaque_host_decides_the_method_as_plain_HTTP_and_a_CONNECT_is_never_required()
    {
        var file = Write();

        var opaque = Run("explain", file, "--agent", "bot", "--target", "opaque.example:443", "--method", "GET", "--at", At);
        var connect = Run("explain", file, "--agent", "bot", "--target", "api.example:443", "--at", At);
        var missingAgent = Run("explain", file, "--target", "api.example:443");

        Assert.Equal(0, opaque.Code);
        Assert.DoesNotContain("tunnel:", opaque.Out, StringComparison.Ordinal);
        Assert.Equal(0, connect.Code);
        Assert.EndsWith("decision: ALLOW (200 allowed, policy p); addresses not judged (no --resolve)", connect.Out.TrimEnd(), StringComparison.Ordinal);
        Assert.Equal(2, missingAgent.Code);
        Assert.Contains("--agent is required (the policy has 2 agents)", missingAgent.Err, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_lists_what_is_inspected_and_each_credential_and_warns_of_an_inspect_pattern_no_agent_reaches()
    {
        var (code, text, _) = Run("check", Write(", \"rateLimits\": { \"requestsPerHour\": 500 }", inspectExtra: ", \"nowhere.example\""));

        Assert.Equal(0, code);
        Assert.Contains("inspect: policy p: api.example, nowhere.example", text, StringComparison.Ordinal);
        Assert.Contains($"credential github-api: agents bot; domains api.example; header Authorization; secret from file:{_dir.File("github.secret")}; required; at most -/min, 500/h, -/day per agent", text, StringComparison.Ordinal);
        Assert.Contains("warning: inspect nowhere.example (policy p): no agent of the policy is allowed a tunnel to nowhere.example:443", text, StringComparison.Ordinal);
        Assert.DoesNotContain("warning: inspect api.example", text, StringComparison.Ordinal);
        Assert.Contains("note: run needs Inspection:CaCertFile and Inspection:CaKeyFile", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_fails_with_one_line_on_a_credential_problem()
    {
        var notInspected = Run("check", Write(domains: "\"opaque.example\""));
        File.Delete(_dir.File("github.secret"));
        var unreadable = Run("check", Write());

        Assert.Equal(1, notInspected.Code);
        Assert.Contains("$.credentials[0].domains[0]: \"opaque.example\" is not inspected by any policy of agent \"bot\"", notInspected.Err, StringComparison.Ordinal);
        Assert.Equal(1, unreadable.Code);
        Assert.Contains("$.credentials[0].secretFile: cannot read", unreadable.Err, StringComparison.Ordinal);
        Assert.Single(unreadable.Err.TrimEnd().Split('\n'));
    }

    /// <summary>
    /// The real binary: without Inspection configured, a policy naming <c>inspect</c> or <c>credentials</c>
    /// stops <c>run</c> with one line naming the JSON path (SPEC §7), and the secret is in no output.
    /// </summary>
    [Theory]
    [InlineData(true, "$.policies[0].inspect: needs HTTPS inspection, which is not configured")]
    [InlineData(false, "$.credentials: needs HTTPS inspection, which is not configured")]
    public async Task Run_without_inspection_configured_refuses_a_policy_that_needs_it(bool inspect, string expected)
    {
        var file = Write();
        if (!inspect)
        {
            File.WriteAllText(file, File.ReadAllText(file).Replace("\"inspect\": [\"api.example\"],", string.Empty, StringComparison.Ordinal));
        }

        var run = await SidecarRun.RunAsync(_dir.Path, ["run", "--listen", "127.0.0.1:0", "--stats", "127.0.0.1:0", "--audit-dir", _dir.File("audit"), "--policy", file]);

        Assert.NotEqual(0, run.ExitCode);
        Assert.Contains(expected, run.Stderr, StringComparison.Ordinal);
        Assert.Single(run.Stderr.TrimEnd().Split('\n'));
        Assert.DoesNotContain(Secret, run.Stdout + run.Stderr, StringComparison.Ordinal);
    }
}
