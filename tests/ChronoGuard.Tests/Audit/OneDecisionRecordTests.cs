using System.Globalization;
using ChronoGuard.Audit;
using ChronoGuard.Proxy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Audit;

/// <summary>
/// One request, one decision record, whose content is true: a refusal that comes after the decision
/// record was written (the durable wait failed, the request body was malformed) is told by the
/// request's close record (status and reason), and the refusal names the decision record's seq.
/// Through the real proxy, a real policy and a real audit log.
/// </summary>
[Collection(RunAlone.Name)]
public sealed class OneDecisionRecordTests
{
    private static string PolicyJson(int port) => $$"""
        { "version": 1, "network": { "allowedCidrs": ["127.0.0.0/8"], "allowedPorts": [{{port}}], "requireSniMatch": true },
          "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
          "policies": [ { "name": "p", "allowedDomains": ["127.0.0.1"] } ] }
        """;

    [RootFact]
    public Task A_durable_wait_that_fails_after_the_decision_record_leaves_one_decision_record_and_a_close_record_with_the_503() =>
        DurableWaitFailsAfterRecordAsync(sniChecked: false);

    /// <summary>A tunnel whose ClientHello is checked got its 200 before the record: the close record says audit_unavailable, status 0 (nothing more was answered).</summary>
    [RootFact]
    public Task A_checked_tunnel_whose_durable_wait_fails_is_closed_and_told_by_its_close_record() =>
        DurableWaitFailsAfterRecordAsync(sniChecked: true);

    private static async Task DurableWaitFailsAfterRecordAsync(bool sniChecked)
    {
        using var disk = new Tmpfs("4m");
        await using var origin = await KestrelOrigin.StartAsync();
        using var policy = new PolicyEngines(PolicyJson(origin.Port).Replace("\"127.0.0.1\"]", "\"127.0.0.1\", \"localhost\"]", StringComparison.Ordinal));
        var hello = sniChecked ? await ClientHellos.CaptureAsync("localhost") : [];
        var options = new AuditOptions { Directory = Path.Combine(disk.Path, "audit"), Durability = "commit-before-forward", SegmentSizeBits = 20, QueueCapacity = 64, CommitTimeoutMs = 3000 };
        var get = $"GET http://127.0.0.1:{origin.Port}/hello HTTP/1.1\r\nHost: 127.0.0.1:{origin.Port}\r\n{PolicyEngines.Credentials()}Connection: close\r\n\r\n";
        RawResponse refused;
        using (var writer = AuditWriter.Open(options, TimeProvider.System))
        {
            var gate = new RecordingGate(new PolicyGate(policy.Engine, TimeProvider.System, writer));
            await using var proxy = TestProxy.Start(gate: gate);
            async Task<RawResponse> Send()
            {
                using var c = await RawClient.ConnectAsync(proxy.EndPoint);
                await c.SendAsync(get);
                return await c.ReadHeadAsync(timeoutMs: 20_000);
            }

            Assert.Equal(200, (await Send()).Status);

            // The fault lands after the request was decided (the writer admitted it) and before its
            // record is committed: just before the record is handed to the writer, the disk fills and
            // system records are committed until the writer has faulted on it.
            string? filler = null;
            gate.BeforeRecord = () =>
            {
                gate.BeforeRecord = null;
                filler = disk.Fill();
                for (var i = 0; i < 20_000 && !writer.Faulted; i++)
                {
                    var seq = SystemRecords.Append(writer, "test_filler", detail: new string('x', 400));
                    _ = writer.WaitDurableAsync(seq).AsTask().GetAwaiter().GetResult();
                }
            };
            if (sniChecked)
            {
                using var c = await RawClient.ConnectAsync(proxy.EndPoint);
                await c.SendAsync($"CONNECT localhost:{origin.Port} HTTP/1.1\r\n{PolicyEngines.Credentials()}\r\n");
                refused = await c.ReadHeadAsync();
                Assert.Equal(200, refused.Status);
                await c.SendAsync(hello);
                Assert.Empty(await c.ReadToEndAsync(timeoutMs: 20_000));
            }
            else
            {
                refused = await Send();
                Assert.Equal(503, refused.Status);
                Assert.Equal(ProxyReasons.AuditUnavailable, refused["X-ChronoGuard-Reason"]);
            }

            Assert.True(writer.Faulted);

            File.Delete(filler!);
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            while (writer.Faulted)
            {
                await Task.Delay(20, deadline.Token);
            }

            Assert.Equal(200, (await Send()).Status);
            await proxy.Server.DrainAsync();
        }

        var records = AuditReader.ReadDirectory(options.Directory).Select(i => i.Entry!).ToList();
        var decision = sniChecked
            ? Assert.Single(records, r => r.Kind == AuditKind.Decision && r.Method == "CONNECT")
            : Assert.Single(records, r => r.Seq == long.Parse(refused["X-ChronoGuard-Audit-Seq"]!, CultureInfo.InvariantCulture));
        Assert.Equal((AuditKind.Decision, "ALLOW", 200), (decision.Kind, decision.Decision, decision.Status));
        var close = Assert.Single(records, r => r.Kind == AuditKind.Close && r.ConnectionId == decision.ConnectionId);
        Assert.Equal((sniChecked ? 0 : 503, ProxyReasons.AuditUnavailable, 0L), (close.Status, close.Reason, close.BytesUp));
        AssertOneDecisionPerRequest(records, expected: 3);
    }

    [Fact]
    public async Task A_malformed_body_refused_after_the_decision_record_is_told_by_the_close_record_not_a_second_decision()
    {
        await using var origin = await KestrelOrigin.StartAsync();
        using var policy = new PolicyEngines(PolicyJson(origin.Port));
        using var dir = new TempDir();
        var options = new AuditOptions { Directory = dir.File("audit") };
        RawResponse refused;
        using (var writer = AuditWriter.Open(options, TimeProvider.System))
        {
            await using var proxy = TestProxy.Start(gate: new PolicyGate(policy.Engine, TimeProvider.System, writer));
            using var client = await RawClient.ConnectAsync(proxy.EndPoint);
            await client.SendAsync($"POST http://127.0.0.1:{origin.Port}/sha256 HTTP/1.1\r\nHost: 127.0.0.1:{origin.Port}\r\n{PolicyEngines.Credentials()}Transfer-Encoding: chunked\r\n\r\nzz\r\n");
            refused = await client.ReadHeadAsync();
            client.Dispose();
            await proxy.Server.DrainAsync();
        }

        Assert.Equal(400, refused.Status);
        var records = AuditReader.ReadDirectory(options.Directory).Select(i => i.Entry!).ToList();
        var decision = Assert.Single(records, r => r.Kind == AuditKind.Decision);
        Assert.Equal(decision.Seq.ToString(CultureInfo.InvariantCulture), refused["X-ChronoGuard-Audit-Seq"]);
        Assert.Equal(("ALLOW", 200), (decision.Decision, decision.Status));
        var close = Assert.Single(records, r => r.Kind == AuditKind.Close);
        Assert.Equal((decision.ConnectionId, 400, "bad_chunk_size"), (close.ConnectionId, close.Status, close.Reason));
    }

    private static void AssertOneDecisionPerRequest(List<AuditEntry> records, int expected)
    {
        var perConnection = records.Where(r => r.Kind == AuditKind.Decision).GroupBy(r => r.ConnectionId).ToList();
        Assert.Equal(expected, perConnection.Count);
        Assert.All(perConnection, g => Assert.Single(g));
    }
}
