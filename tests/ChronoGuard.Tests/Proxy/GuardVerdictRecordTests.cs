using System.Net;
using System.Net.Sockets;
using ChronoGuard.Audit;
using ChronoGuard.Metrics;
using ChronoGuard.Policy;
using ChronoGuard.Proxy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Proxy;

/// <summary>
/// A name that resolves to refused and allowed addresses: only the allowed ones are dialed and the
/// record (decision, reason, status, enforced, dialedIp) and the decision metrics say what happened,
/// through the real proxy, a real policy and a real audit log, for CONNECT and plain HTTP.
/// </summary>
public sealed class GuardVerdictRecordTests
{
    private const string Host = "mixed.test";

    public static TheoryData<bool, string, string, string, bool, string> Cases()
    {
        const string Cidr = "\"allowPrivateDestinations\": false, \"allowedCidrs\": [\"127.0.0.1/32\"]";
        const string NoCidr = "\"allowPrivateDestinations\": false, \"allowedCidrs\": []";
        const string Private = "\"allowPrivateDestinations\": true, \"allowedCidrs\": []";
        var data = new TheoryData<bool, string, string, string, bool, string>();
        foreach (var connect in new[] { true, false })
        {
            // connect, mode, network, addresses in resolver order, origin up,
            // expected "status decision reason dialedIp enforced" (reason "-": the policy's, not the guard's)
            data.Add(connect, "enforce", Cidr, "::1 10.1.2.3 127.0.0.1", true, "200 ALLOW - 127.0.0.1 true");
            data.Add(connect, "observe", Cidr, "::1 10.1.2.3 127.0.0.1", true, "200 ALLOW - 127.0.0.1 true");
            data.Add(connect, "enforce", Private, "169.254.169.254 127.0.0.1", true, "200 ALLOW - 127.0.0.1 true");
            data.Add(connect, "enforce", Cidr, "::1 10.1.2.3", true, $"403 BLOCK {Reasons.PrivateDestination} ::1 true");
            data.Add(connect, "observe", NoCidr, "::1 127.0.0.1", true, $"200 BLOCK {Reasons.PrivateDestination} 127.0.0.1 false");
            data.Add(connect, "enforce", Cidr, "10.1.2.3 127.0.0.1", false, $"502 ALLOW {ProxyReasons.UpstreamRefused} 127.0.0.1 true");
        }

        return data;
    }

    [Theory]
    [InlineData("CONNECT 10.255.255.1:443 HTTP/1.1\r\nHost: 10.255.255.1:443\r\n", "10.255.255.1", "private_destination")]
    [InlineData("GET http://169.254.169.254/latest HTTP/1.1\r\nHost: 169.254.169.254\r\n", "169.254.169.254", "metadata_destination")]
    [InlineData("CONNECT [fd00::1]:443 HTTP/1.1\r\nHost: [fd00::1]:443\r\n", "fd00::1", "private_destination")]
    public async Task An_IP_literal_the_guard_refuses_is_named_in_the_record_though_nothing_was_resolved_or_dialed(string request, string address, string reason)
    {
        using var policy = new PolicyEngines("""
            { "version": 1, "network": { "allowPrivateDestinations": false, "allowedPorts": [80, 443] },
              "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
              "policies": [ { "name": "p", "allowedDomains": ["10.255.255.1", "169.254.169.254"] } ] }
            """);
        var gate = new RecordingGate(new PolicyGate(policy.Engine, TimeProvider.System));
        await using var proxy = TestProxy.Start(gate: gate, resolver: new MapResolver());

        using var client = await RawClient.ConnectAsync(proxy.EndPoint);
        await client.SendAsync(request + PolicyEngines.Credentials() + "\r\n");

        Assert.Equal(403, (await client.ReadHeadAsync()).Status);
        Assert.Equal(reason, Assert.Single(gate.Records).Reason);
        Assert.Equal(address, Assert.Single(gate.Destinations).Dialed);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task The_record_and_the_metrics_say_what_happened_to_a_name_with_refused_and_allowed_addresses(
        bool connect, string mode, string network, string addresses, bool originUp, string expected)
    {
        var parts = expected.Split(' ');
        var (status, decision, reason, dialed, enforced) = (int.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture), parts[1], parts[2], parts[3], bool.Parse(parts[4]));
        await using var origin = await KestrelOrigin.StartAsync();
        var port = originUp ? origin.Port : ClosedPort();
        using var policy = new PolicyEngines($$"""
            { "version": 1, "mode": "{{mode}}",
              "network": { {{network}}, "allowedPorts": [{{port}}], "requireSniMatch": false },
              "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
              "policies": [ { "name": "p", "allowedDomains": ["{{Host}}"] } ] }
            """);
        using var dir = new TempDir();
        var resolver = new MapResolver();
        resolver.Set(Host, [.. addresses.Split(' ').Select(IPAddress.Parse)]);
        var auditDir = dir.File("audit");
        var metrics = new ProxyMetrics(DecisionReasons.Labels);
        RawResponse response;
        using (var writer = AuditWriter.Open(new AuditOptions { Directory = auditDir }, TimeProvider.System))
        {
            await using var proxy = TestProxy.Start(gate: new PolicyGate(policy.Engine, TimeProvider.System, writer, metrics), resolver: resolver);
            using var client = await RawClient.ConnectAsync(proxy.EndPoint);
            var hello = $"GET http://{Host}:{port}/hello HTTP/1.1\r\nHost: {Host}:{port}\r\n{PolicyEngines.Credentials()}Connection: close\r\n\r\n";
            if (connect)
            {
                await client.SendAsync($"CONNECT {Host}:{port} HTTP/1.1\r\nHost: {Host}:{port}\r\n{PolicyEngines.Credentials()}\r\n");
                response = await client.ReadHeadAsync();
                if (response.Status == 200)
                {
                    await client.SendAsync($"GET /hello HTTP/1.1\r\nHost: {Host}:{port}\r\nConnection: close\r\n\r\n");
                    Assert.Equal(200, (await client.ReadHeadAsync()).Status);
                }
            }
            else
            {
                await client.SendAsync(hello);
                response = await client.ReadHeadAsync();
            }

            client.Dispose();
            await proxy.Server.DrainAsync();
        }

        Assert.Equal(status, response.Status);
        var records = AuditReader.ReadDirectory(auditDir).Select(i => i.Entry!).Where(e => e.Kind == AuditKind.Decision).ToList();
        var record = Assert.Single(records);
        Assert.Equal(decision, record.Decision);
        Assert.Equal(status, record.Status);
        Assert.Equal(enforced, record.Enforced);
        Assert.Equal(dialed, record.DialedIp);
        if (reason != "-")
        {
            Assert.Equal(reason, record.Reason);
        }
        else
        {
            Assert.NotEqual(Reasons.PrivateDestination, record.Reason);
            Assert.NotEqual(Reasons.MetadataDestination, record.Reason);
        }

        if (status != 200)
        {
            Assert.Equal(record.Seq.ToString(System.Globalization.CultureInfo.InvariantCulture), response["X-ChronoGuard-Audit-Seq"]);
            Assert.Equal(decision, response["X-ChronoGuard-Decision"]);
        }

        Assert.Equal(originUp && status == 200, !origin.ConnectionIds.IsEmpty);
        var counters = metrics.ForAgent(policy.Engine.Current.AgentsById["bot"].Runtime.Index);
        var counted = decision == "ALLOW" ? Decision.Allow : Decision.Block;
        Assert.Equal(1, counters.Decisions(counted));
        Assert.Equal(0, counters.Decisions(counted == Decision.Allow ? Decision.Block : Decision.Allow));
    }

    private static int ClosedPort()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)listener.LocalEndPoint!).Port;
    }
}
