using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Policy;

/// <summary>The real executable: a bad policy file is a one-line start error (exit 2), and a rejected reload keeps it running.</summary>
public sealed class PolicyReloadProcessTests
{
    private const string Good = """{ "version": 1, "defaultAction": "allow", "policies": [ { "name": "a" } ] }""";

    [Theory]
    [InlineData("""{ "version": 1, "policies": [ { "name": "a", "extends": [null] } ] }""", "$.policies[0].extends[0]: is null")]
    [InlineData("""{ "version": 1, "agents": [ { "id": null } ] }""", "$.agents[0].id: is null")]
    [InlineData("""{ "version": 1, "policies": [ { "name": "a", "rules": [ { "action": "deny", "when": [ null ] } ] } ] }""", "$.policies[0].rules[0].when[0]: is null")]
    public async Task Sighup_with_a_null_in_the_file_is_rejected_and_the_sidecar_keeps_running(string bad, string expected)
    {
        using var dir = new TempDir();
        var file = dir.File("policy.json");
        File.WriteAllText(file, Good);
        await using var sidecar = await SidecarProcess.StartAsync(dir.Path, ["--policy", file], new Dictionary<string, string> { ["CHRONOGUARD__Policy__Watch"] = "false" });

        File.WriteAllText(file, bad);
        sidecar.Signal("HUP");
        var line = await sidecar.WaitForOutputAsync(l => l.Contains("rejected, the previous policy stays", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
        Assert.Contains(expected, line, StringComparison.Ordinal);

        using var http = new HttpClient();
        Assert.Equal("ok\n", await http.GetStringAsync(new Uri($"http://{sidecar.StatsEndPoint}/healthz")));
        Assert.False(sidecar.Process.HasExited);
        // The rejection is an audit record too; the writer commits in batches, so poll to a deadline.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!AuditHolds(dir, "policy_reject"u8) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }

        Assert.True(AuditHolds(dir, "policy_reject"u8), "no policy_reject record in the audit log");
    }

    private static bool AuditHolds(TempDir dir, ReadOnlySpan<byte> text)
    {
        foreach (var f in Directory.GetFiles(Path.Combine(dir.Path, "audit"), "audit.log.*"))
        {
            using var stream = new FileStream(f, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            if (copy.GetBuffer().AsSpan(0, (int)copy.Length).IndexOf(text) >= 0)
            {
                return true;
            }
        }

        return false;
    }
}
