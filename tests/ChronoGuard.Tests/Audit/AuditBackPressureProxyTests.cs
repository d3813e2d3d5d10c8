using ChronoGuard.Audit;
using ChronoGuard.Proxy;
using ChronoGuard.Sidecar.Cli;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Audit;

/// <summary>
/// Through the real proxy: requests that meet a full audit ring wait parked in
/// <see cref="AuditWriter.WaitForRoomAsync"/> (the accept loop's over-capacity refusal too), not in a
/// thread spinning on the ring, and are all answered and recorded once the writer drains.
/// </summary>
public sealed class AuditBackPressureProxyTests
{
    private static string PolicyJson(int port) => $$"""
        { "version": 1, "network": { "allowedCidrs": ["127.0.0.0/8"], "allowedPorts": [{{port}}] },
          "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
          "policies": [ { "name": "p", "allowedDomains": ["127.0.0.1"] } ] }
        """;

    [Fact]
    public async Task Requests_a_malformed_head_and_an_over_capacity_refusal_meeting_a_full_ring_wait_parked_and_are_answered_once_it_drains()
    {
        await using var origin = await KestrelOrigin.StartAsync();
        using var policy = new PolicyEngines(PolicyJson(origin.Port));
        using var dir = new TempDir();
        const int gets = 4;
        var options = new AuditOptions { Directory = dir.File("audit"), QueueCapacity = 16, CommitTimeoutMs = 600_000, CommitIntervalMs = 1 };
        using (var writer = AuditWriter.Open(options, TimeProvider.System))
        {
            // gets + the malformed one are admitted; the next connection is over capacity.
            await using var proxy = TestProxy.Start(o => o.MaxConnections = gets + 1, gate: new PolicyGate(policy.Engine, TimeProvider.System, writer));
            using var held = new ManualResetEventSlim();
            using var release = new ManualResetEventSlim();
            writer.LoopHook = () =>
            {
                held.Set();
                release.Wait();
            };
            var first = default(AuditRecord);
            first.Kind = AuditKind.System;
            writer.Append(ref first);
            Assert.True(held.Wait(TimeSpan.FromSeconds(30)));
            writer.LoopHook = null;
            var filler = default(AuditRecord);
            filler.Kind = AuditKind.System;
            while (writer.TryAppend(ref filler, out _))
            {
            }

            var clients = new List<RawClient>();
            for (var i = 0; i < gets; i++)
            {
                var c = await RawClient.ConnectAsync(proxy.EndPoint);
                await c.SendAsync($"GET http://127.0.0.1:{origin.Port}/hello HTTP/1.1\r\nHost: 127.0.0.1:{origin.Port}\r\n{PolicyEngines.Credentials()}Connection: close\r\n\r\n");
                clients.Add(c);
            }

            var malformed = await RawClient.ConnectAsync(proxy.EndPoint);
            await malformed.SendAsync("GET\x01 / HTTP/1.1\r\n\r\n");
            clients.Add(malformed);
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            while (writer.RoomWaiters < gets + 1)
            {
                await Task.Delay(10, deadline.Token);
            }

            var over = await RawClient.ConnectAsync(proxy.EndPoint);
            clients.Add(over);
            while (writer.RoomWaiters < gets + 2)
            {
                await Task.Delay(10, deadline.Token);
            }

            release.Set();
            var answers = new List<RawResponse>();
            foreach (var c in clients)
            {
                answers.Add(await c.ReadHeadAsync(timeoutMs: 30_000));
                c.Dispose();
            }

            Assert.All(answers.Take(gets), a => Assert.Equal(200, a.Status));
            Assert.Equal(400, answers[gets].Status);
            Assert.Equal((503, ProxyReasons.MaxConnections), (answers[gets + 1].Status, answers[gets + 1]["X-ChronoGuard-Reason"]));
            await proxy.Server.DrainAsync();
        }

        var stdout = new StringWriter();
        Assert.True(VerifyCommand.Run(["--audit-dir", options.Directory], stdout, new StringWriter()) == 0, stdout.ToString());
        var records = AuditReader.ReadDirectory(options.Directory).Select(i => i.Entry!).ToList();
        Assert.Equal(gets, records.Count(r => r.Kind == AuditKind.Decision && r.Decision == "ALLOW"));
        Assert.Equal(gets, records.Count(r => r.Kind == AuditKind.Close));
        Assert.Single(records, r => r.Reason == ProxyReasons.MaxConnections);
    }
}
