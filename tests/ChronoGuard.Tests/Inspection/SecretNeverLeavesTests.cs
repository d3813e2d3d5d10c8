using System.Text;
using ChronoGuard.Tests.Policy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Inspection;

/// <summary>
/// The real <c>chronoguard</c> binary with a CA from its own <c>ca init</c>, a policy with a credential
/// whose secret is in a file, and curl sending the placeholder through an inspected tunnel: the origin
/// receives the secret, and then every output of the run is searched for it (SPEC §7): what curl got,
/// the sidecar's log, <c>/stats</c> and <c>/metrics</c>, <c>export</c> and <c>verify</c>,
/// <c>policy explain</c> and <c>policy check</c>, and every byte of the audit directory.
/// </summary>
public sealed class SecretNeverLeavesTests
{
    private const string Secret = "sk-live-Never-Leaves-0123456789abcdef";
    private const string Placeholder = "cg-placeholder-llm";

    [Fact]
    public async Task The_secret_reaches_the_origin_and_no_output_of_the_run()
    {
        await ExternalTools.EnsureAsync("curl");
        using var dir = new TempDir();
        var ca = dir.File("ca");
        var init = await SidecarRun.RunAsync(dir.Path, ["ca", "init", "--out", ca, "--permit", "localhost"]);
        Assert.True(init.ExitCode == 0, init.Stdout + init.Stderr);
        using var originCa = new TestCa();
        await using var origin = await TlsEchoOrigin.StartAsync(originCa.Issue("localhost"));
        var trust = originCa.WritePem(dir.File("origin-ca.pem"));
        await File.WriteAllTextAsync(dir.File("llm.secret"), Secret + "\n");
        var policy = dir.File("policy.json");
        await File.WriteAllTextAsync(policy, $$"""
            {
              "version": 1, "defaultAction": "deny",
              "network": { "allowedPorts": [{{origin.Port}}], "allowPrivateDestinations": true },
              "agents": [ { "id": "bot", "tokenSha256": "{{PolicyFixture.TokenSha}}", "policies": ["p"] } ],
              "policies": [ { "name": "p", "allowedDomains": ["localhost"], "inspect": ["localhost"],
                "rules": [ { "name": "no-admin", "priority": 1, "action": "deny", "when": [ { "field": "path", "op": "starts_with", "value": "/quiet/admin" } ] } ] } ],
              "credentials": [
                { "name": "llm-api", "agents": ["bot"], "domains": ["localhost"], "header": "Authorization",
                  "value": "Bearer {secret}", "secretFile": "{{dir.File("llm.secret")}}", "placeholder": "{{Placeholder}}" } ]
            }
            """);
        var outputs = new List<(string Where, string Text)>();

        await using (var sidecar = await SidecarProcess.StartAsync(dir.Path, ["--policy", policy], new Dictionary<string, string>
        {
            ["CHRONOGUARD__Inspection__CaCertFile"] = Path.Combine(ca, "ca.crt"),
            ["CHRONOGUARD__Inspection__CaKeyFile"] = Path.Combine(ca, "ca.key"),
            ["CHRONOGUARD__Inspection__UpstreamTrustFile"] = trust,
        }))
        {
            var url = $"https://localhost:{origin.Port}";
            var (code, curl) = await ExternalTools.RunAsync("curl",
            [
                "-sS", "-i", "--proxy", $"http://{sidecar.ProxyEndPoint}", "--proxy-user", "bot:" + PolicyFixture.Token,
                "--cacert", Path.Combine(ca, "ca.crt"), "-H", "Authorization: Bearer " + Placeholder,
                url + "/quiet/chat", url + "/quiet/admin/keys", url + "/quiet/search?key=" + Placeholder,
            ], TimeSpan.FromSeconds(60));
            Assert.True(code == 0, curl);
            outputs.Add(("curl", curl));
            Assert.Contains("403 Forbidden", curl, StringComparison.Ordinal);

            using var stats = new HttpClient { BaseAddress = new Uri($"http://{sidecar.StatsEndPoint}") };
            outputs.Add(("/stats", await stats.GetStringAsync("/stats")));
            outputs.Add(("/metrics", await stats.GetStringAsync("/metrics")));
            sidecar.Signal("TERM");
            Assert.Equal(0, await sidecar.WaitForExitAsync(TimeSpan.FromSeconds(30)));
            outputs.Add(("sidecar log", sidecar.Output));
        }

        // The positive control: the origin got the secret, in place of the placeholder, twice.
        Assert.Equal(2, origin.Echoes.Count(e => e.Contains("Authorization: Bearer " + Secret + "\n", StringComparison.Ordinal)));
        Assert.DoesNotContain(origin.Seen, s => s.Contains("/admin", StringComparison.Ordinal));

        foreach (var args in new[]
        {
            new[] { "export", "--audit-dir", dir.File("audit") },
            ["export", "--audit-dir", dir.File("audit"), "--format", "csv"],
            ["verify", "--audit-dir", dir.File("audit")],
            ["policy", "explain", policy, "--agent", "bot", "--target", $"localhost:{origin.Port}", "--method", "GET", "--path", "/quiet/chat"],
            ["policy", "check", policy],
        })
        {
            var run = await SidecarRun.RunAsync(dir.Path, args);
            outputs.Add((string.Join(' ', args), run.Stdout + run.Stderr));
        }

        // The export holds the inner requests (so the search below searched records, not an empty file),
        // and the two that carried the credential name it.
        var export = outputs.First(o => o.Where.StartsWith("export", StringComparison.Ordinal)).Text;
        Assert.Contains("/quiet/chat", export, StringComparison.Ordinal);
        Assert.Equal(2, export.Split('\n').Count(l => l.Contains("\"credential\":\"llm-api\"", StringComparison.Ordinal)));
        foreach (var file in Directory.EnumerateFiles(dir.Path, "*", SearchOption.AllDirectories).Where(f => !f.EndsWith("llm.secret", StringComparison.Ordinal)))
        {
            outputs.Add((file, Encoding.Latin1.GetString(await File.ReadAllBytesAsync(file))));
        }

        Assert.All(outputs, o => Assert.False(o.Text.Contains(Secret, StringComparison.Ordinal), $"the secret is in {o.Where}"));
    }
}
