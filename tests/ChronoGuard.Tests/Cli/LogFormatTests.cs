using System.Text.Json;
using System.Text.RegularExpressions;
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

    [Fact]
    public async Task The_start_line_names_the_audit_directory()
    {
        using var dir = new TempDir();
        await using var sidecar = await SidecarProcess.StartAsync(dir.Path);
        var line = await sidecar.WaitForOutputAsync(l => l.Contains("proxy listening on", StringComparison.Ordinal), TimeSpan.FromSeconds(30));

        using var json = JsonDocument.Parse(line);
        var audit = Path.GetFullPath(Path.Combine(dir.Path, "audit"));
        Assert.Equal(audit, json.RootElement.GetProperty("State").GetProperty("AuditDirectory").GetString());
        Assert.EndsWith($", audit log in {audit}", json.RootElement.GetProperty("Message").GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("CHRONOGUARD__Logging__Format", "text")]
    [InlineData("CHRONOGUARD__Logging__Format", "simple")]
    [InlineData("CHRONOGUARD__Logging__Console__FormatterName", "simple")]
    public async Task The_text_format_is_one_plain_line_per_entry(string variable, string value)
    {
        using var dir = new TempDir();
        var policy = dir.File("policy.json");
        File.WriteAllText(policy, $$"""
            { "version": 1, "agents": [ { "id": "bot", "tokenSha256": "{{PolicyFixture.TokenSha}}", "policies": ["p"] } ],
              "policies": [ { "name": "p", "allowedDomains": ["example.com"] } ] }
            """);
        await using var sidecar = await SidecarProcess.StartAsync(dir.Path, ["--policy", policy], new Dictionary<string, string> { [variable] = value });
        var started = await sidecar.WaitForOutputAsync(l => l.Contains("proxy listening on", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info: chronoguard\[1\] chronoguard \S+ proxy listening on \S+, stats on \S+, audit log in " + Regex.Escape(Path.GetFullPath(dir.File("audit"))) + "$", started);

        using (var client = await RawClient.ConnectAsync(sidecar.ProxyEndPoint))
        {
            await client.SendAsync($"CONNECT elsewhere.test:443 HTTP/1.1\r\nHost: elsewhere.test:443\r\nProxy-Authorization: {System.Text.Encoding.ASCII.GetString(PolicyFixture.Basic("bot"))}\r\n\r\n");
            var head = await client.ReadHeadAsync();
            Assert.Equal(403, head.Status);
            var refused = await sidecar.WaitForOutputAsync(l => l.Contains("chronoguard.refusals", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
            Assert.EndsWith($" warn: chronoguard.refusals[60] refused DENY default_deny: agent bot CONNECT elsewhere.test:443 from 127.0.0.1, dialed -, status 403, audit seq {head["X-ChronoGuard-Audit-Seq"]}", refused, StringComparison.Ordinal);
        }

        Assert.DoesNotContain(sidecar.Output.Split('\n'), l => l.StartsWith('{'));
    }
}
