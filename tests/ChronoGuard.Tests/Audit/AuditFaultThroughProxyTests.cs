using System.Net;
using ChronoGuard.Audit;
using ChronoGuard.Policy;
using ChronoGuard.Proxy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Audit;

/// <summary>
/// The real proxy over a writer whose disk fills up, in commit-before-forward: requests are refused
/// 503 audit_unavailable and never hang, nothing reaches the origin without a durable record, and
/// traffic resumes once space is freed.
/// </summary>
[Collection(RunAlone.Name)]
public sealed class AuditFaultThroughProxyTests
{
    [RootFact]
    public async Task A_faulted_writer_under_commit_before_forward_refuses_503_and_forwards_nothing_unrecorded()
    {
        using var disk = new Tmpfs("4m");
        using var dir = new TempDir();
        await using var origin = await KestrelOrigin.StartAsync();
        File.WriteAllText(dir.File("policy.json"), $$"""
            { "version": 1, "mode": "enforce", "network": { "allowedCidrs": ["127.0.0.0/8"], "allowedPorts": [{{origin.Port}}] },
              "agents": [ { "id": "bot", "tokenSha256": "{{ChronoGuard.Tests.Policy.PolicyFixture.TokenSha}}", "policies": ["p"] } ],
              "policies": [ { "name": "p", "allowedDomains": ["127.0.0.1"] } ] }
            """);
        var engine = new PolicyEngine(dir.File("policy.json"), 512, TimeProvider.System);
        Assert.True(engine.Reload().Ok);
        var options = new AuditOptions { Directory = Path.Combine(disk.Path, "audit"), Durability = "commit-before-forward", SegmentSizeBits = 20, QueueCapacity = 64, CommitTimeoutMs = 3000 };
        var served = 0;
        var refused = 0;
        using (var writer = AuditWriter.Open(options, TimeProvider.System))
        {
            await using var proxy = TestProxy.Start(gate: new PolicyGate(engine, TimeProvider.System, writer));
            var get = $"GET http://127.0.0.1:{origin.Port}/hello HTTP/1.1\r\nHost: 127.0.0.1:{origin.Port}\r\n{PolicyEngines.Credentials()}Connection: close\r\n\r\n";
            async Task<int> Send()
            {
                using var c = await RawClient.ConnectAsync(proxy.EndPoint);
                await c.SendAsync(get);
                var head = await c.ReadHeadAsync(timeoutMs: 20_000);
                if (head.Status == 503)
                {
                    Assert.Equal("audit_unavailable", head["X-ChronoGuard-Reason"]);
                }

                return head.Status;
            }

            Assert.Equal(200, await Send());
            var filler = disk.Fill();
            for (var i = 0; i < 400 && !writer.Faulted; i++)
            {
                var status = await Send();
                Assert.True(status is 200 or 503, $"status {status}");
            }

            Assert.True(writer.Faulted, "the writer never faulted on a full disk");
            for (var i = 0; i < 5; i++)
            {
                Assert.Equal(503, await Send());
                refused++;
            }

            File.Delete(filler);
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (writer.Faulted && DateTime.UtcNow < deadline)
            {
                await Task.Delay(20);
            }

            Assert.False(writer.Faulted, "the writer never recovered");
            Assert.Equal(200, await Send());
            served = origin.ConnectionIds.Count;
        }

        // Every request the origin served has its durable ALLOW record: nothing was forwarded unrecorded.
        var allowed = AuditReader.ReadDirectory(options.Directory).Select(i => i.Entry!)
            .Count(e => e.Kind == AuditKind.Decision && e.Decision == "ALLOW" && e.Status == 200);
        Assert.True(allowed >= served, $"{served} origin connections, {allowed} ALLOW records");
        Assert.Equal(5, refused);
    }
}
