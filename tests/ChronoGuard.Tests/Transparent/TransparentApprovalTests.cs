using System.Net;
using System.Text;
using ChronoGuard.Approvals;
using ChronoGuard.Audit;
using ChronoGuard.Policy;
using ChronoGuard.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace ChronoGuard.Tests.Transparent;

/// <summary>
/// <c>ask</c> on the transparent front end (SPEC §9, §10), in process: a redirected TLS client and a
/// redirected plain-HTTP client are held after their first bytes, and once a grant covers them they go
/// on with those bytes intact (the hold watched the client without consuming what it sent), decided
/// again as the listener's agent with identity transparent, one record each.
/// </summary>
public sealed class TransparentApprovalTests
{
    private static string Policy(int port) => $$"""
        {
          "version": 1, "defaultAction": "ask",
          "network": { "allowPrivateDestinations": false, "allowedCidrs": ["127.0.0.0/8"], "allowedPorts": [{{port}}], "requireSniMatch": true },
          "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
          "policies": [ { "name": "p", "allowedDomains": ["allowed.test"] } ]
        }
        """;

    private static async Task<PendingApprovalView> OpenedAsync(PendingApprovals approvals, string host)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            foreach (var p in approvals.List())
            {
                if (p.Host == host)
                {
                    return p;
                }
            }

            Assert.True(DateTime.UtcNow < deadline, $"no approval opened for {host}");
            await Task.Delay(5);
        }
    }

    private static void Approve(TransparentRig rig, PendingApprovals approvals, string domain)
    {
        var grant = new RuntimeGrant("g-t", "bot", [domain], DateTimeOffset.UtcNow.AddHours(1), "approved", "ops-alice", DateTimeOffset.UtcNow);
        rig.Engines.Engine.RuntimeGrants.Publish([grant]);
        Assert.Equal(1, approvals.ReleaseCovered(grant));
    }

    [Fact]
    public async Task A_redirected_TLS_client_is_held_after_its_ClientHello_and_relayed_with_it_once_approved()
    {
        await using var origin = TcpOrigin.Echo();
        var approvals = new PendingApprovals(null, TimeProvider.System, NullLogger.Instance, 60_000, 16);
        await using var rig = TransparentRig.Start(Policy(origin.Port), approvals: approvals);
        rig.Answered("asked.test", IPAddress.Loopback);
        var hello = await ClientHellos.CaptureAsync("asked.test");

        using var client = await rig.ConnectAsync(new IPEndPoint(IPAddress.Loopback, origin.Port));
        await client.SendAsync(hello);
        var opened = await OpenedAsync(approvals, "asked.test");
        Assert.Equal(("bot", origin.Port, "TRANSPARENT"), (opened.Agent, opened.Port, opened.Method));
        Assert.Empty(rig.Gate.Records);

        Approve(rig, approvals, "asked.test");
        Assert.Equal(hello, await client.ReadExactlyAsync(hello.Length));
        var record = Assert.Single(rig.Gate.Records);
        Assert.Equal(("ALLOW", "grant:approved"), (record.Decision, record.Reason));
        Assert.All(rig.Gate.Identities, i => Assert.Equal(AuditIdentity.Transparent, i));
    }

    [Fact]
    public async Task A_redirected_plain_HTTP_request_is_held_with_its_body_and_forwarded_whole_once_approved()
    {
        await using var origin = await KestrelOrigin.StartAsync();
        var approvals = new PendingApprovals(null, TimeProvider.System, NullLogger.Instance, 60_000, 16);
        await using var rig = TransparentRig.Start(Policy(origin.Port), approvals: approvals);
        rig.Answered("asked.test", IPAddress.Loopback);

        using var client = await rig.ConnectAsync(new IPEndPoint(IPAddress.Loopback, origin.Port));
        await client.SendAsync("POST /echo HTTP/1.1\r\nHost: asked.test\r\nContent-Length: 5\r\n\r\nhel");
        var opened = await OpenedAsync(approvals, "asked.test");
        Assert.Equal("POST", opened.Method);
        await client.SendAsync("lo");

        Approve(rig, approvals, "asked.test");
        Assert.Equal(200, (await client.ReadHeadAsync()).Status);
        Assert.Equal("hello", Encoding.ASCII.GetString(await client.ReadExactlyAsync(5)));
        Assert.Equal([("POST", "/echo")], rig.Gate.Requests);
        Assert.Equal(("ALLOW", "grant:approved"), (Assert.Single(rig.Gate.Records).Decision, Assert.Single(rig.Gate.Records).Reason));
    }
}
