using System.Net;
using ChronoGuard.Audit;
using ChronoGuard.Policy;
using ChronoGuard.Proxy;
using ChronoGuard.Sidecar.Cli;
using ChronoGuard.Tests.Policy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Cli;

/// <summary>
/// <c>policy suggest</c> (SPEC §9) on a real audit log written by the real proxy in observe mode (with
/// and without a policy file): the draft folds siblings into a wildcard, keeps the port, names the
/// allowedCidrs entry the guard needs, passes <c>policy check</c>, and in enforce mode the same
/// requests pass while one that was not observed is refused.
/// </summary>
public sealed class PolicySuggestTests
{
    private static readonly string[] Observed = ["a.pkg.example.com", "b.pkg.example.com", "c.pkg.example.com", "solo.example.net"];

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_draft_from_an_observe_run_passes_check_and_lets_the_same_requests_through_in_enforce(bool withPolicyFile)
    {
        await using var origin = await KestrelOrigin.StartAsync();
        using var dir = new TempDir();
        var auditDir = dir.File("audit");
        var resolver = new MapResolver();
        foreach (var host in Observed.Append("unseen.pkg.example.org").Append("blocked.example.net"))
        {
            resolver[host] = IPAddress.Loopback;
        }

        // Observe: with a policy that allows nothing (every request recorded as a refusal let through), or with no file.
        using var observe = withPolicyFile ? new PolicyEngines("""
            { "version": 1, "mode": "observe", "defaultAction": "deny",
              "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
              "policies": [ { "name": "p", "allowedDomains": [] } ] }
            """) : null;
        var engine = observe?.Engine ?? new PolicyEngine(null, 512, TimeProvider.System);
        var agent = withPolicyFile ? "bot" : "anonymous";
        using (var writer = AuditWriter.Open(new AuditOptions { Directory = auditDir }, TimeProvider.System))
        {
            await using var proxy = TestProxy.Start(gate: new PolicyGate(engine, TimeProvider.System, writer), resolver: resolver);
            foreach (var host in Observed)
            {
                Assert.Equal(200, await GetAsync(proxy, host, origin.Port, withPolicyFile ? agent : null));
            }

            await proxy.Server.DrainAsync();
        }

        var records = AuditReader.ReadDirectory(auditDir).Select(i => i.Entry!).Where(e => e.Kind == AuditKind.Decision).ToList();
        Assert.Equal(Observed.Length, records.Count(r => r.Status == 200));

        var stdout = new StringWriter();
        var stderr = new StringWriter();
        Assert.Equal(0, await CommandLine.RunAsync(["policy", "suggest", "--audit-dir", auditDir], stdout, stderr));
        var draft = stdout.ToString();
        Assert.Equal(string.Empty, stderr.ToString());
        Assert.Contains($"\"*.pkg.example.com:{origin.Port}\", // 3 names folded: a.pkg.example.com, b.pkg.example.com, c.pkg.example.com", draft, StringComparison.Ordinal);
        Assert.Contains($"\"solo.example.net:{origin.Port}\"", draft, StringComparison.Ordinal);
        Assert.DoesNotContain("\"a.pkg.example.com", draft, StringComparison.Ordinal);
        Assert.Contains($"\"127.0.0.1/32\" // private_destination: 4 records, a.pkg.example.com:{origin.Port} (agent {agent}), b.pkg.example.com:{origin.Port} (agent {agent}), ", draft, StringComparison.Ordinal);
        Assert.Contains($"{{ \"id\": \"{agent}\", \"tokenSha256\": \"{PolicyDraft.TokenPlaceholder}\"", draft, StringComparison.Ordinal);

        var draftFile = dir.File("draft.json");
        File.WriteAllText(draftFile, draft);
        var check = new StringWriter();
        var checkErr = new StringWriter();
        Assert.True(PolicyCommand.Run(["check", draftFile], check, checkErr) == 0, checkErr.ToString());
        Assert.StartsWith($"valid: {draftFile}: 1 agents, 1 policies, 2 domain patterns (2 with a port), mode enforce", check.ToString(), StringComparison.Ordinal);

        // Filters: an agent or a time window that selects nothing gives an empty draft (still valid) and says so.
        foreach (var filter in new[] { new[] { "--agent", "nobody" }, ["--since", "2999-01-01"] })
        {
            var empty = new StringWriter();
            var note = new StringWriter();
            Assert.Equal(0, PolicySuggestCommand.Run(["--audit-dir", auditDir, .. filter], empty, note));
            Assert.Contains("no decision records about destinations", note.ToString(), StringComparison.Ordinal);
            File.WriteAllText(dir.File("empty.json"), empty.ToString());
            Assert.Equal(0, PolicyCommand.Run(["check", dir.File("empty.json")], TextWriter.Null, TextWriter.Null));
        }

        var recent = new StringWriter();
        Assert.Equal(0, PolicySuggestCommand.Run(["--audit-dir", auditDir, "--since", "1h", "--agent", agent], recent, TextWriter.Null));
        Assert.Equal(draft, recent.ToString());

        // Enforce with the draft, its placeholder replaced by the agent's token hash as the comment says.
        using var enforce = new PolicyEngines(draft.Replace(PolicyDraft.TokenPlaceholder, "$TOKEN", StringComparison.Ordinal));
        Assert.False(enforce.Engine.Current.IsObserve);
        await using (var proxy = TestProxy.Start(gate: new PolicyGate(enforce.Engine, TimeProvider.System), resolver: resolver))
        {
            foreach (var host in Observed)
            {
                Assert.Equal(200, await GetAsync(proxy, host, origin.Port, agent));
            }

            Assert.Equal(200, await GetAsync(proxy, "z.pkg.example.com", origin.Port, agent, resolveAs: "a.pkg.example.com", resolver));
            Assert.Equal(403, await GetAsync(proxy, "unseen.pkg.example.org", origin.Port, agent));
            Assert.Equal(403, await GetAsync(proxy, "blocked.example.net", origin.Port, agent));
        }
    }

    private static async Task<int> GetAsync(TestProxy proxy, string host, int port, string? agent, string? resolveAs = null, MapResolver? resolver = null)
    {
        if (resolveAs is not null)
        {
            resolver![host] = IPAddress.Loopback;
        }

        using var client = await RawClient.ConnectAsync(proxy.EndPoint);
        await client.SendAsync($"GET http://{host}:{port}/hello HTTP/1.1\r\nHost: {host}:{port}\r\n{(agent is null ? string.Empty : PolicyEngines.Credentials(agent))}Connection: close\r\n\r\n");
        return (await client.ReadHeadAsync()).Status;
    }

    [Theory]
    [InlineData(new string[0], "policy suggest: --audit-dir DIR is required")]
    [InlineData(new[] { "--audit-dir" }, "policy suggest: --audit-dir needs a value")]
    [InlineData(new[] { "--audit-dir", "/nonexistent-chronoguard" }, "policy suggest: /nonexistent-chronoguard: directory not found")]
    [InlineData(new[] { "--audit-dir", ".", "--since", "yesterday" }, "policy suggest: --since 'yesterday' is not a time")]
    [InlineData(new[] { "--audit-dir", ".", "--bogus" }, "policy suggest: unknown option '--bogus'")]
    [InlineData(new[] { "--audit-dir", ".", "extra" }, "policy suggest: unexpected argument 'extra'")]
    public void Usage_errors_are_one_line_and_exit_2(string[] args, string expected)
    {
        var stderr = new StringWriter();
        Assert.Equal(2, PolicySuggestCommand.Run(args, TextWriter.Null, stderr));
        Assert.StartsWith(expected, stderr.ToString(), StringComparison.Ordinal);
        Assert.Single(stderr.ToString().TrimEnd().Split('\n'));
    }

    [Fact]
    public void Help_prints_the_usage_and_exits_0()
    {
        var stdout = new StringWriter();
        Assert.Equal(0, PolicySuggestCommand.Run(["--help"], stdout, TextWriter.Null));
        Assert.StartsWith("usage: chronoguard policy suggest --audit-dir DIR", stdout.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("90s", 90)]
    [InlineData("10m", 600)]
    [InlineData("1h", 3600)]
    [InlineData("7d", 604_800)]
    public void Since_takes_relative_times(string text, int seconds)
    {
        var now = new DateTimeOffset(2026, 12, 5, 12, 0, 0, TimeSpan.Zero);
        Assert.Equal(now.AddSeconds(-seconds), PolicySuggestCommand.ParseTime(text, now));
        Assert.Equal(new DateTimeOffset(2026, 12, 1, 0, 0, 0, TimeSpan.Zero), PolicySuggestCommand.ParseTime("2026-12-01", now));
        Assert.Null(PolicySuggestCommand.ParseTime("1w", now));
    }
}
