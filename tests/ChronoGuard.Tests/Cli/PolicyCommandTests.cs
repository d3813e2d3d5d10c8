using ChronoGuard.Sidecar.Cli;
using ChronoGuard.Tests.Policy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Cli;

public sealed class PolicyCommandTests
{
    private static readonly string Example = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../../examples/policy.json"));

    [Fact]
    public void Check_accepts_the_example_and_rejects_a_broken_file_with_one_line()
    {
        var stdout = new StringWriter();
        Assert.Equal(0, PolicyCommand.Run(["check", Example], stdout, TextWriter.Null));
        Assert.StartsWith("valid: ", stdout.ToString(), StringComparison.Ordinal);

        using var dir = new TempDir();
        File.WriteAllText(dir.File("bad.json"), """{ "version": 1, "policies": [ { "name": "a", "extends": ["a"] } ] }""");
        var stderr = new StringWriter();
        Assert.Equal(1, PolicyCommand.Run(["check", dir.File("bad.json")], TextWriter.Null, stderr));
        Assert.Equal($"{dir.File("bad.json")}: line 1, column 57: $.policies[0].extends: cycle: a -> a", stderr.ToString().TrimEnd());
        Assert.Equal(2, PolicyCommand.Run(["check", dir.File("missing.json")], TextWriter.Null, TextWriter.Null));
    }

    [Fact]
    public void Explain_prints_every_step_and_exits_1_when_denied()
    {
        var stdout = new StringWriter();
        var code = PolicyCommand.Run(["explain", Example, "--agent", "research-bot", "--target", "gist.github.com:443", "--at", "2026-11-25T10:00:00Z"], stdout, TextWriter.Null);
        var text = stdout.ToString();

        Assert.Equal(1, code);
        Assert.Contains("agent research-bot: active, policies in order: research", text, StringComparison.Ordinal);
        Assert.Contains("domain: matches *.github.com, gist.github.com", text, StringComparison.Ordinal);
        Assert.Contains("bucket research: 600/min", text, StringComparison.Ordinal);
        Assert.EndsWith("decision: BLOCK (403 domain_blocked, policy research)", text.TrimEnd(), StringComparison.Ordinal);

        var allowed = new StringWriter();
        Assert.Equal(0, PolicyCommand.Run(["explain", Example, "--agent", "research-bot", "--target", "api.openai.com:443", "--at", "2026-11-25T10:00:00Z"], allowed, TextWriter.Null));
        Assert.Contains("time window (Europe/Berlin): open", allowed.ToString(), StringComparison.Ordinal);

        var rule = new StringWriter();
        Assert.Equal(1, PolicyCommand.Run(["explain", Example, "--agent", "research-bot", "--target", "x.blob.core.windows.net:443", "--method", "PUT"], rule, TextWriter.Null));
        Assert.Contains("rule no-uploads-to-storage (research) matches: Deny", rule.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Hash_token_matches_sha256_of_the_utf8_token()
    {
        var stdout = new StringWriter();
        Assert.Equal(0, HashTokenCommand.Run([], new StringReader(PolicyFixture.Token + "\n"), stdout, TextWriter.Null));
        Assert.Equal(PolicyFixture.TokenSha, stdout.ToString().TrimEnd());
        Assert.Equal(2, HashTokenCommand.Run([], new StringReader(""), TextWriter.Null, TextWriter.Null));
    }
}
