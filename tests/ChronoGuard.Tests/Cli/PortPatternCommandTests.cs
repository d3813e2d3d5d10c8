using ChronoGuard.Sidecar.Cli;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Cli;

/// <summary><c>policy check</c> and <c>policy explain</c> on port-scoped patterns (SPEC §8).</summary>
public sealed class PortPatternCommandTests
{
    private const string Policy = """
        { "version": 1, "network": { "allowedPorts": [443] },
          "agents": [ { "id": "bot", "tokenSha256": "0000000000000000000000000000000000000000000000000000000000000000", "policies": ["team"] } ],
          "policies": [ { "name": "team", "allowedDomains": ["github.com:22", "github.com", "*.example.org:8000-8100"], "blockedDomains": ["github.com:2222"] } ] }
        """;

    private static (int Code, string Out, string Err) Run(string json, params string[] args)
    {
        using var dir = new TempDir();
        var file = dir.File("policy.json");
        File.WriteAllText(file, json);
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = PolicyCommand.Run([args[0], file, .. args[1..]], stdout, stderr);
        return (code, stdout.ToString().Replace(file, "FILE", StringComparison.Ordinal), stderr.ToString().Replace(file, "FILE", StringComparison.Ordinal).TrimEnd());
    }

    private static (int Code, string Out) Explain(string target)
    {
        var (code, output, _) = Run(Policy, "explain", "--agent", "bot", "--target", target, "--at", "2026-11-25T10:00:00Z");
        return (code, output);
    }

    [Fact]
    public void Check_counts_port_scoped_patterns_and_reports_a_bad_port_in_one_line()
    {
        var (code, output, _) = Run(Policy, "check");
        Assert.Equal(0, code);
        Assert.StartsWith("valid: FILE: 1 agents, 1 policies, 4 domain patterns (3 with a port), mode enforce", output, StringComparison.Ordinal);

        var (bad, _, error) = Run(Policy.Replace("\"github.com:22\"", "\"github.com:70000\"", StringComparison.Ordinal), "check");
        Assert.Equal(1, bad);
        Assert.Equal("FILE: line 3, column 54: $.policies[0].allowedDomains[0]: \"github.com:70000\": port 70000 is outside 1-65535", error);

        var (backwards, _, rangeError) = Run(Policy.Replace("8000-8100", "8100-8000", StringComparison.Ordinal), "check");
        Assert.Equal(1, backwards);
        Assert.Equal("FILE: line 3, column 85: $.policies[0].allowedDomains[2]: \"*.example.org:8100-8000\": port range 8100-8000 runs backwards (write 8000-8100)", rangeError);
    }

    [Fact]
    public void Explain_names_the_pattern_that_admits_a_port_outside_allowedPorts()
    {
        var (code, output) = Explain("github.com:22");
        Assert.Equal(0, code);
        Assert.Contains("network: port 22 is not in allowedPorts; admitted by the allowed pattern github.com:22", output, StringComparison.Ordinal);
        Assert.Contains("domain: matches github.com:22, github.com; github.com:2222 matches the name, not port 22", output, StringComparison.Ordinal);
        Assert.EndsWith("decision: ALLOW (200 allowed, policy team)", output.TrimEnd(), StringComparison.Ordinal);

        (code, output) = Explain("a.example.org:8100");
        Assert.Equal(0, code);
        Assert.Contains("admitted by the allowed pattern *.example.org:8000-8100", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Explain_says_why_no_pattern_admits_a_port()
    {
        var (code, output) = Explain("github.com:23");
        Assert.Equal(1, code);
        Assert.Contains("network: port 23 is not in allowedPorts, and no port-scoped allowed pattern of the agent's policies covers it (github.com:22, github.com:2222 match the name, not port 23)", output, StringComparison.Ordinal);
        Assert.EndsWith("decision: BLOCK (403 port_not_allowed)", output.TrimEnd(), StringComparison.Ordinal);

        (code, output) = Explain("github.com:2222");
        Assert.Equal(1, code);
        Assert.Contains("(github.com:22 matches the name, not port 2222; github.com:2222 covers port 2222 but is in no allowed list of the agent's policies)", output, StringComparison.Ordinal);

        (code, output) = Explain("a.example.org:8101");
        Assert.Contains("(*.example.org:8000-8100 matches the name, not port 8101)", output, StringComparison.Ordinal);
        Assert.EndsWith("decision: BLOCK (403 port_not_allowed)", output.TrimEnd(), StringComparison.Ordinal);
    }

    [Fact]
    public void Explain_shows_a_port_scoped_pattern_that_does_not_match_on_an_allowedPorts_port()
    {
        var (code, output) = Explain("github.com:443");
        Assert.Equal(0, code);
        Assert.DoesNotContain("network: port", output, StringComparison.Ordinal);
        Assert.Contains("domain: matches github.com; github.com:22, github.com:2222 match the name, not port 443", output, StringComparison.Ordinal);
    }
}
