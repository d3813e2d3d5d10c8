using System.Text.Json;
using ChronoGuard.Tests.Policy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Cli;

public sealed class LogFormatTests
{
    [Fact]
    public async Task Log_lines_are_JSON_that_keeps_quotes_and_other_characters_readable()
    {
        using var dir = new TempDir();
        var odd = Path.Combine(dir.Path, "it's \"quoted\" <&> + café");
        Directory.CreateDirectory(odd);
        var policy = Path.Combine(odd, "policy.json");
        File.WriteAllText(policy, $$"""
            { "version": 1, "agents": [ { "id": "bot", "tokenSha256": "{{PolicyFixture.TokenSha}}", "policies": ["p"] } ],
              "policies": [ { "name": "p", "allowedDomains": ["example.com"] } ] }
            """);

        await using var sidecar = await SidecarProcess.StartAsync(dir.Path, ["--policy", policy]);
        var line = await sidecar.WaitForOutputAsync(l => l.Contains("policy loaded from", StringComparison.Ordinal), TimeSpan.FromSeconds(30));

        // JSON still escapes what it must (the quote as \"), and nothing else is hidden behind \uXXXX.
        Assert.Contains("it's \\\"quoted\\\" <&> + café", line, StringComparison.Ordinal);
        Assert.DoesNotContain("\\u00", line, StringComparison.Ordinal);
        using var json = JsonDocument.Parse(line);
        Assert.StartsWith("policy loaded from " + policy + " (sha256 ", json.RootElement.GetProperty("Message").GetString(), StringComparison.Ordinal);
    }
}
