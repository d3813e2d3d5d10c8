using System.Net;
using ChronoGuard.Audit;
using ChronoGuard.Policy;
using ChronoGuard.Proxy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Proxy;

/// <summary>
/// SPEC §5 through the real proxy, a real policy and a real audit log: unauthenticated refusals past
/// Audit:UnauthenticatedPerSecond from one source are counted into one system record per second
/// (written when the heartbeat finds the second over, and at stop), the refused clients still get
/// their 407 (without an audit seq, since no record of their own exists), the count is a metric, and
/// the domain analytics see only authenticated requests. Time is the test's clock.
/// </summary>
public sealed class UnauthenticatedFloodTests
{
    [Fact]
    public async Task A_flood_without_credentials_is_recorded_as_one_count_per_second_and_never_reaches_the_domain_analytics()
    {
        await using var origin = await KestrelOrigin.StartAsync();
        using var policy = new PolicyEngines($$"""
            { "version": 1, "network": { "allowedCidrs": ["127.0.0.0/8"], "allowedPorts": [443, {{origin.Port}}] },
              "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
              "policies": [ { "name": "p", "allowedDomains": ["allowed.test"] } ] }
            """);
        using var dir = new TempDir();
        var options = new AuditOptions { Directory = dir.File("audit") };
        var clock = new ManualTimeProvider(new DateTimeOffset(2026, 12, 4, 10, 0, 0, 250, TimeSpan.Zero));
        PolicyGate gate;
        var withSeq = 0;
        var withoutSeq = 0;
        using (var writer = AuditWriter.Open(options, TimeProvider.System))
        {
            gate = new PolicyGate(policy.Engine, clock, writer);
            await using var proxy = TestProxy.Start(gate: gate, resolver: new MapResolver { ["allowed.test"] = IPAddress.Loopback });
            async Task Refused(string request, int status)
            {
                using var c = await RawClient.ConnectAsync(proxy.EndPoint);
                await c.SendAsync(request);
                var head = await c.ReadHeadAsync();
                Assert.Equal(status, head.Status);
                if (status == 407)
                {
                    Assert.Equal("Basic realm=\"chronoguard\"", head["Proxy-Authenticate"]);
                }

                _ = head["X-ChronoGuard-Audit-Seq"] is null ? withoutSeq++ : withSeq++;
            }

            const string NoCredentials = "GET http://looks-legit.example/ HTTP/1.1\r\nHost: looks-legit.example\r\n\r\n";
            var badCredentials = $"CONNECT looks-legit.example:443 HTTP/1.1\r\nHost: looks-legit.example:443\r\nProxy-Authorization: Basic {Convert.ToBase64String("bot:wrong"u8)}\r\n\r\n";

            // Second 1: 50 refusals without valid credentials and one malformed request, all from 127.0.0.1.
            for (var i = 0; i < 50; i++)
            {
                await Refused(i % 2 == 0 ? NoCredentials : badCredentials, 407);
            }

            await Refused("NOT A REQUEST\r\n\r\n", 400);
            using (var agent = await RawClient.ConnectAsync(proxy.EndPoint))
            {
                await agent.SendAsync($"GET http://allowed.test:{origin.Port}/hello HTTP/1.1\r\nHost: allowed.test:{origin.Port}\r\n{PolicyEngines.Credentials()}Connection: close\r\n\r\n");
                Assert.Equal(200, (await agent.ReadHeadAsync()).Status);
            }

            Assert.Equal((20, 31), (withSeq, withoutSeq));

            // The second is over: the heartbeat's tick writes its count, with no further refusal needed.
            clock.Advance(TimeSpan.FromSeconds(1));
            gate.Tick();

            // Second 2: 25 more; the stop path records the 5 counted ones though their second has not ended.
            for (var i = 0; i < 25; i++)
            {
                await Refused(NoCredentials, 407);
            }

            Assert.Equal((40, 36), (withSeq, withoutSeq));
            await proxy.Server.DrainAsync();
            gate.FlushSuppressed();
        }

        var records = AuditReader.ReadDirectory(options.Directory).Select(i => i.Entry!).ToList();
        Assert.Equal(40, records.Count(r => r.Kind == AuditKind.Decision && r.Status == 407));
        Assert.DoesNotContain(records, r => r.Kind == AuditKind.Decision && r.Status == 400);
        var counts = records.Where(r => r.Kind == AuditKind.System && r.Reason == UnauthenticatedLimiter.Reason).ToList();
        Assert.Equal(2, counts.Count);
        Assert.All(counts, r => Assert.Equal(("127.0.0.1", "looks-legit.example", 407), (r.SourceIp, r.Host, r.Status)));
        Assert.StartsWith("31 unauthenticated refusals in the second from 2026-12-04T10:00:00Z", counts[0].Path, StringComparison.Ordinal);
        Assert.StartsWith("5 unauthenticated refusals in the second from 2026-12-04T10:00:01Z", counts[1].Path, StringComparison.Ordinal);

        Assert.Equal(36, gate.Metrics.UnauthenticatedSuppressed);
        Assert.Equal(76, gate.Metrics.Unauthenticated.Decisions(Decision.Deny));
        var top = gate.Metrics.Domains.Snapshot();
        Assert.Equal("allowed.test", Assert.Single(top).Domain);
        Assert.Equal(1, gate.Metrics.Distinct.Global.Estimate());
    }

    /// <summary>
    /// The real binary, stopped by SIGTERM right after a flood: every refusal is either its own record
    /// or in a count recorded before the stop record (none left in the limiter), and exactly the
    /// refusals without a seq header are in the counts. Whatever the seconds the flood fell into.
    /// </summary>
    [Fact]
    public async Task The_sidecar_records_every_counted_refusal_before_its_stop_record()
    {
        using var dir = new TempDir();
        var file = dir.File("policy.json");
        File.WriteAllText(file, $$"""
            { "version": 1, "agents": [ { "id": "bot", "tokenSha256": "{{ChronoGuard.Tests.Policy.PolicyFixture.TokenSha}}", "policies": ["p"] } ],
              "policies": [ { "name": "p", "allowedDomains": ["allowed.test"] } ] }
            """);
        const int Sent = 100;
        var withoutSeq = 0;
        await using (var sidecar = await SidecarProcess.StartAsync(dir.Path, ["--policy", file], new Dictionary<string, string>
        {
            ["CHRONOGUARD__Policy__Watch"] = "false",
            // A low limit (set through the configuration) so that the flood is counted however slowly it runs.
            ["CHRONOGUARD__Audit__UnauthenticatedPerSecond"] = "2",
        }))
        {
            for (var i = 0; i < Sent; i++)
            {
                using var c = await RawClient.ConnectAsync(sidecar.ProxyEndPoint);
                await c.SendAsync("GET http://looks-legit.example/ HTTP/1.1\r\nHost: looks-legit.example\r\n\r\n");
                var head = await c.ReadHeadAsync();
                Assert.Equal(407, head.Status);
                withoutSeq += head["X-ChronoGuard-Audit-Seq"] is null ? 1 : 0;
            }

            sidecar.Signal("TERM");
            Assert.Equal(0, await sidecar.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        }

        var records = AuditReader.ReadDirectory(Path.Combine(dir.Path, "audit")).Select(i => i.Entry!).ToList();
        var counts = records.Where(r => r.Kind == AuditKind.System && r.Reason == UnauthenticatedLimiter.Reason).ToList();
        var counted = counts.Sum(r => int.Parse(r.Path.AsSpan(0, r.Path.IndexOf(' ', StringComparison.Ordinal)), System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(withoutSeq, counted);
        Assert.Equal(Sent, counted + records.Count(r => r.Kind == AuditKind.Decision && r.Status == 407));
        Assert.True(withoutSeq > 0, "100 refusals in a row never went past 2 in one second");
        Assert.All(counts, r => Assert.EndsWith("(Audit:UnauthenticatedPerSecond=2)", r.Path, StringComparison.Ordinal));
        var stop = Assert.Single(records, r => r.Kind == AuditKind.System && r.Reason == "stop");
        Assert.All(counts, r => Assert.True(r.Seq < stop.Seq));
    }
}
