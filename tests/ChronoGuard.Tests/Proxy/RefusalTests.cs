using System.Net;
using System.Net.Sockets;
using System.Text;
using ChronoGuard.Proxy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Proxy;

public sealed class RefusalTests
{
    public static TheoryData<string, string> MalformedRequests => new()
    {
        { "GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", "content_length_with_transfer_encoding" },
        { "GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", "duplicate_content_length" },
        { "GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5, 6\r\n\r\n", "duplicate_content_length" },
        { "GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\nX-Long: a\r\n b\r\n\r\n", "obs_fold" },
        { "GET http://a.test/ HTTP/1.1\nHost: a.test\n\n", "bare_lf" },
        { "GET http://a.test/ HTTP/1.1\r\nHost: a.test\nX: y\r\n\r\n", "bare_lf" },
        { "GET http://a.test/ HTTP/1.1\r\nHost : a.test\r\n\r\n", "whitespace_before_colon" },
        { "GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "unsupported_transfer_encoding" },
        { "GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", "unsupported_transfer_encoding" },
        { "GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n", "duplicate_host" },
        { "GET http://a.test/ HTTP/1.1\r\nHost: b.test\r\n\r\n", "host_mismatch" },
        { "GET http://a.test/ HTTP/1.1\r\n\r\n", "missing_host" },
        { "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n", "not_a_proxy_request" },
        { "GET https://a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n", "https_requires_connect" },
        { "GET http://user:pw@a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n", "userinfo_in_target" },
        { "GET http://a.test/ HTTP/2.0\r\nHost: a.test\r\n\r\n", "bad_version" },
        { "CONNECT a.test HTTP/1.1\r\nHost: a.test\r\n\r\n", "bad_target" },
        { "CONNECT a.test:99999 HTTP/1.1\r\n\r\n", "bad_target" },
        { "G(T http://a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n", "bad_method" },
        { "GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\nX: a\0b\r\n\r\n", "bad_header_value" },
        { "GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\nX: a\rb\r\n\r\n", "bare_cr" },
        { "\r\n\r\n", "bad_request_line" },
        { "\u0016\u0003\u0001\u0002\u0000\u0001\u0000\u0001\u00fc\u0003\u0003\r\n\r\n", "bad_request_line" },
    };

    [Theory]
    [MemberData(nameof(MalformedRequests))]
    public async Task Malformed_request_gets_400_with_decision_and_audit_seq_then_close(string request, string reason)
    {
        var gate = new RecordingGate();
        await using var proxy = TestProxy.Start(gate: gate);
        using var client = await RawClient.ConnectAsync(proxy.EndPoint);
        await client.SendAsync(Encoding.Latin1.GetBytes(request));

        var response = await client.ReadHeadAsync();
        Assert.Equal(400, response.Status);
        Assert.Equal("DENY", response["X-ChronoGuard-Decision"]);
        Assert.Equal("close", response["Connection"]);
        var body = Encoding.ASCII.GetString(await client.ReadToEndAsync());
        Assert.Contains(reason, body, StringComparison.Ordinal);
        var record = Assert.Single(gate.Records);
        Assert.Equal((400, "DENY", reason), (record.Status, record.Decision, record.Reason));
        Assert.Equal(record.Seq.ToString(System.Globalization.CultureInfo.InvariantCulture), response["X-ChronoGuard-Audit-Seq"]);
    }

    [Fact]
    public async Task Head_over_the_limit_gets_431()
    {
        var gate = new RecordingGate();
        await using var proxy = TestProxy.Start(o => o.MaxHeaderBytes = 4096, gate);
        using var client = await RawClient.ConnectAsync(proxy.EndPoint);
        await client.SendAsync("GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\nX-Big: " + new string('a', 5000) + "\r\n\r\n");

        var response = await client.ReadHeadAsync();
        Assert.Equal(431, response.Status);
        Assert.Equal("head_too_large", Assert.Single(gate.Records).Reason);
    }

    [Fact]
    public async Task Connection_over_MaxConnections_gets_503_while_the_first_is_served()
    {
        var gate = new RecordingGate();
        await using var origin = await KestrelOrigin.StartAsync();
        await using var proxy = TestProxy.Start(o => o.MaxConnections = 1, gate);
        using var first = await RawClient.ConnectAsync(proxy.EndPoint);
        await first.SendAsync($"GET http://127.0.0.1:{origin.Port}/hello HTTP/1.1\r\nHost: 127.0.0.1:{origin.Port}\r\n\r\n");
        Assert.Equal(200, (await first.ReadHeadAsync()).Status);

        using var second = await RawClient.ConnectAsync(proxy.EndPoint);
        await second.SendAsync($"CONNECT 127.0.0.1:{origin.Port} HTTP/1.1\r\n\r\n");
        var refused = await second.ReadHeadAsync();
        Assert.Equal(503, refused.Status);
        Assert.Contains(gate.Records, r => r.Status == 503 && r.Reason == "max_connections");
    }

    [Fact]
    public async Task Refused_upstream_gets_502()
    {
        var gate = new RecordingGate();
        await using var proxy = TestProxy.Start(gate: gate);
        var closedPort = ClosedPort();
        using var client = await RawClient.ConnectAsync(proxy.EndPoint);
        await client.SendAsync($"CONNECT 127.0.0.1:{closedPort} HTTP/1.1\r\nHost: 127.0.0.1:{closedPort}\r\n\r\n");

        var response = await client.ReadHeadAsync();
        Assert.Equal(502, response.Status);
        Assert.Equal("ALLOW", response["X-ChronoGuard-Decision"]);
        Assert.Equal((502, "upstream_refused"), (Assert.Single(gate.Records).Status, gate.Records.Single().Reason));
    }

    [Fact]
    public async Task Unresolvable_name_gets_502()
    {
        await using var proxy = TestProxy.Start(resolver: new MapResolver());
        using var client = await RawClient.ConnectAsync(proxy.EndPoint);
        await client.SendAsync("GET http://nowhere.test/ HTTP/1.1\r\nHost: nowhere.test\r\n\r\n");
        var response = await client.ReadHeadAsync();
        Assert.Equal(502, response.Status);
        Assert.Contains("upstream_unresolved", Encoding.ASCII.GetString(await client.ReadToEndAsync()), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Gate_refusing_an_address_blocks_before_any_connect()
    {
        var gate = new RecordingGate { AddressFilter = a => !IPAddress.IsLoopback(a) };
        await using var origin = TcpOrigin.Echo();
        await using var proxy = TestProxy.Start(gate: gate, resolver: new MapResolver { ["rebind.test"] = IPAddress.Loopback });
        using var client = await RawClient.ConnectAsync(proxy.EndPoint);
        await client.SendAsync($"CONNECT rebind.test:{origin.Port} HTTP/1.1\r\n\r\n");
        var response = await client.ReadHeadAsync();
        Assert.Equal(403, response.Status);
        Assert.Equal("BLOCK", response["X-ChronoGuard-Decision"]);
        Assert.Equal("private_destination", Assert.Single(gate.Records).Reason);
    }

    [Fact]
    public async Task Random_garbage_never_hangs_or_kills_the_proxy()
    {
        await using var origin = await KestrelOrigin.StartAsync();
        await using var proxy = TestProxy.Start(o =>
        {
            o.MaxHeaderBytes = 2048;
            o.HeaderTimeoutMs = 2000;
        });
        var random = new Random(1234);
        var tasks = new List<Task>();
        for (var i = 0; i < 200; i++)
        {
            var blob = new byte[random.Next(1, 3000)];
            random.NextBytes(blob);
            if (i % 2 == 0)
            {
                // Half the blobs end like a head so the parser, not the timeout, must answer.
                blob[^4] = 13;
                blob[^3] = 10;
                blob[^2] = 13;
                blob[^1] = 10;
            }

            tasks.Add(SendGarbageAsync(proxy.EndPoint, blob));
        }

        await Task.WhenAll(tasks);
        using var http = proxy.CreateClient();
        Assert.Equal("hello from origin", await http.GetStringAsync(new Uri(origin.Address, "/hello")));
    }

    private static async Task SendGarbageAsync(IPEndPoint proxy, byte[] blob)
    {
        using var client = await RawClient.ConnectAsync(proxy);
        try
        {
            await client.SendAsync(blob);
        }
        catch (SocketException)
        {
            // The proxy may refuse and close before it has read everything.
        }

        // Every blob gets its refusal: a close (or reset) with no reply is the failure this test exists for.
        var reply = await client.ReadToEndAsync(timeoutMs: 10_000);
        Assert.True(reply.Length > 0, $"no reply to {blob.Length} bytes of garbage (first bytes {Convert.ToHexString(blob, 0, Math.Min(16, blob.Length))})");
        var status = Encoding.ASCII.GetString(reply, 0, Math.Min(13, reply.Length));
        Assert.Matches("^HTTP/1.1 (400|408|431) ", status);
    }

    internal static int ClosedPort()
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)s.LocalEndPoint!).Port;
    }
}
