using System.Net;
using System.Text.RegularExpressions;
using ChronoGuard.Audit;
using ChronoGuard.Proxy;
using ChronoGuard.Tests.Policy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Resolution;

/// <summary>
/// The real binary with the DNS guard configured as a user would (environment settings, the agent
/// from Transparent:Agent), its upstream pinned to a fake resolver on 127.0.0.1: dig is answered for an
/// allowed name, refused for another, and the refusal is in the audit log after a clean stop.
/// </summary>
public sealed partial class DnsSidecarTests
{
    [Fact]
    public async Task The_sidecar_guards_DNS_for_the_transparent_agent_and_records_what_it_refuses()
    {
        await ExternalTools.EnsureAsync("dig");
        await using var upstream = await FakeResolver.StartAsync("allowed.test|A|300|127.0.0.2", "evil.test|A|300|127.0.0.66");
        using var dir = new TempDir();
        var policy = dir.File("policy.json");
        File.WriteAllText(policy, $$"""
            { "version": 1, "agents": [ { "id": "bot", "tokenSha256": "{{PolicyFixture.TokenSha}}", "policies": ["p"] } ],
              "policies": [ { "name": "p", "allowedDomains": ["allowed.test"] } ] }
            """);
        await using (var sidecar = await SidecarProcess.StartAsync(dir.Path, ["--policy", policy], new Dictionary<string, string>
        {
            ["CHRONOGUARD__Policy__Watch"] = "false",
            ["CHRONOGUARD__Transparent__Agent"] = "bot",
            ["CHRONOGUARD__Dns__Listen"] = "127.0.0.1:0",
            ["CHRONOGUARD__Dns__Upstream"] = upstream.EndPoint.ToString(),
        }))
        {
            var line = await sidecar.WaitForOutputAsync(l => l.Contains("DNS guard listening on", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
            var guard = IPEndPoint.Parse(ListeningPattern().Match(line).Groups[1].Value);
            Assert.Contains("for agent bot, upstream " + upstream.EndPoint, line, StringComparison.Ordinal);

            var (code, allowed) = await ExternalTools.RunAsync("dig", ["@127.0.0.1", "-p", guard.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "+short", "allowed.test", "A"], TimeSpan.FromSeconds(30));
            Assert.True(code == 0, allowed);
            Assert.Equal("127.0.0.2", allowed.Trim());
            (code, var refused) = await ExternalTools.RunAsync("dig", ["@127.0.0.1", "-p", guard.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "evil.test", "A"], TimeSpan.FromSeconds(30));
            Assert.Contains("status: NXDOMAIN", refused, StringComparison.Ordinal);

            sidecar.Signal("TERM");
            Assert.Equal(0, await sidecar.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        }

        Assert.Equal(["udp allowed.test A"], upstream.Questions);
        var records = AuditReader.ReadDirectory(Path.Combine(dir.Path, "audit")).Select(i => i.Entry!).ToList();
        var record = Assert.Single(records, r => r.Kind == AuditKind.Decision);
        Assert.Equal(("DNS", "BLOCK", ProxyReasons.DnsNameRefused, "evil.test", "bot"), (record.Method, record.Decision, record.Reason, record.Host, record.Agent));
    }

    [GeneratedRegex(@"DNS guard listening on (\S+) \(UDP")]
    private static partial Regex ListeningPattern();
}
