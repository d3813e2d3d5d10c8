using System.Text;
using System.Text.Json;
using ChronoGuard.Audit;
using ChronoGuard.Policy;
using ChronoGuard.Proxy;
using ChronoGuard.Tests.Policy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Audit;

/// <summary>Format 2 fields as the real proxy fills them: the address dialed, enforced or only observed, and identity.</summary>
public sealed class AuditFormat2Tests
{
    private static string Policy(int port, string mode) => $$"""
        {
          "version": 1, "mode": "{{mode}}",
          "network": { "allowedCidrs": ["127.0.0.0/8"], "allowedPorts": [{{port}}] },
          "agents": [ { "id": "bot", "tokenSha256": "{{PolicyFixture.TokenSha}}", "policies": ["p"] } ],
          "policies": [ { "name": "p", "allowedDomains": ["127.0.0.1"], "blockedDomains": ["blocked.test"] } ]
        }
        """;

    private static async Task<List<JsonElement>> RunAsync(string mode, Func<System.Net.IPEndPoint, int, Task> traffic)
    {
        using var dir = new TempDir();
        await using var origin = TcpOrigin.Echo();
        File.WriteAllText(dir.File("policy.json"), Policy(origin.Port, mode));
        var engine = new PolicyEngine(dir.File("policy.json"), 512, TimeProvider.System);
        Assert.True(engine.Reload().Ok);
        var options = new AuditOptions { Directory = dir.File("audit"), Durability = "commit-before-forward" };
        using (var audit = AuditWriter.Open(options, TimeProvider.System))
        {
            await using var proxy = TestProxy.Start(gate: new PolicyGate(engine, TimeProvider.System, audit));
            await traffic(proxy.EndPoint, origin.Port);

            // Every request has reached its scope's exit (its records are written) before the proxy stops.
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (proxy.Server.ActiveConnections > 0 && DateTime.UtcNow < deadline)
            {
                await Task.Delay(10);
            }
        }

        var lines = AuditTestData.Export(options.Directory);
        return [.. lines.Select(l => JsonDocument.Parse(l).RootElement).Where(r => r.GetProperty("kind").GetString() == "decision")];
    }

    private static async Task<int> RequestAsync(System.Net.IPEndPoint proxy, string request)
    {
        using var client = await RawClient.ConnectAsync(proxy);
        await client.SendAsync(request);
        return (await client.ReadHeadAsync()).Status;
    }

    private static string Auth(string token = PolicyFixture.Token) => Encoding.ASCII.GetString(PolicyFixture.Basic("bot", token));

    [Fact]
    public async Task Enforced_decisions_carry_the_dialed_address_and_how_the_agent_was_identified()
    {
        var records = await RunAsync("enforce", async (proxy, port) =>
        {
            Assert.Equal(200, await RequestAsync(proxy, $"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nProxy-Authorization: {Auth()}\r\n\r\n"));
            Assert.Equal(407, await RequestAsync(proxy, $"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nProxy-Authorization: {Auth("wrong")}\r\n\r\n"));
            Assert.Equal(403, await RequestAsync(proxy, $"CONNECT blocked.test:{port} HTTP/1.1\r\nProxy-Authorization: {Auth()}\r\n\r\n"));
        });

        Assert.Equal(3, records.Count);
        Assert.All(records, r => Assert.Equal(2, r.GetProperty("format").GetInt32()));
        Assert.All(records, r => Assert.True(r.GetProperty("enforced").GetBoolean()));
        Assert.Equal(("ALLOW", "127.0.0.1", "credential"), Fields(records[0]));
        Assert.Equal(("DENY", "", "unauthenticated"), Fields(records[1]));
        Assert.Equal(("BLOCK", "", "credential"), Fields(records[2]));
    }

    [Fact]
    public async Task Observe_mode_marks_a_refusal_it_let_through_as_not_enforced()
    {
        var records = await RunAsync("observe", async (proxy, port) =>
        {
            Assert.Equal(200, await RequestAsync(proxy, $"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nProxy-Authorization: {Auth()}\r\n\r\n"));
            // Blocked by the policy, let through by observe mode: the record says BLOCK, not enforced.
            Assert.Equal(200, await RequestAsync(proxy, $"CONNECT localhost:{port} HTTP/1.1\r\nProxy-Authorization: {Auth()}\r\n\r\n"));
        });

        // (A tunnel closed before any ClientHello adds its own observed not_tls record: filter by host.)
        var allowed = records.First(r => r.GetProperty("host").GetString() == "127.0.0.1");
        Assert.Equal("ALLOW", allowed.GetProperty("decision").GetString());
        Assert.True(allowed.GetProperty("enforced").GetBoolean());
        var observed = records.First(r => r.GetProperty("host").GetString() == "localhost");
        Assert.NotEqual("ALLOW", observed.GetProperty("decision").GetString());
        Assert.False(observed.GetProperty("enforced").GetBoolean());
        Assert.Equal("credential", observed.GetProperty("identity").GetString());
        Assert.NotEqual(string.Empty, observed.GetProperty("dialedIp").GetString());
    }

    [Fact]
    public void The_ring_record_stays_fixed_size_and_format_2_fields_default_to_enforced_and_no_identity()
    {
        Assert.True(System.Runtime.CompilerServices.RuntimeHelpers.IsReferenceOrContainsReferences<AuditRecord>() is false);
        var r = default(AuditRecord);
        Assert.True(r.Enforced);
        Assert.Equal(AuditIdentity.None, r.Identity);
        r.Set(AuditText.DialedIp, new string('9', 100));
        Assert.Equal(64, r.Get(AuditText.DialedIp).Length);
        r.Enforced = false;
        r.Reset();
        Assert.True(r.Enforced);
        Assert.Equal(0, r.Get(AuditText.DialedIp).Length);
    }

    private static (string, string, string) Fields(JsonElement r) =>
        (r.GetProperty("decision").GetString()!, r.GetProperty("dialedIp").GetString()!, r.GetProperty("identity").GetString()!);
}
