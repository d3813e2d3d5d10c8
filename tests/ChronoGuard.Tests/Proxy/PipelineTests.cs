using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using ChronoGuard.Proxy;
using ChronoGuard.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace ChronoGuard.Tests.Proxy;

/// <summary>
/// What a request holds is given back on every path, by the one exit of its scope; egress is charged
/// on every path; a kept upstream is judged again; a request body that fails ends its exchange.
/// </summary>
public sealed class PipelineTests
{
    private static string Policy(int[] ports, string cidrs = "\"127.0.0.0/8\"", bool sni = true, string extra = "") => $$"""
        {
          "version": 1,
          "network": { "allowPrivateDestinations": false, "allowedCidrs": [{{cidrs}}], "allowedPorts": [{{string.Join(", ", ports)}}], "requireSniMatch": {{(sni ? "true" : "false")}} },
          "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
          "policies": [ { "name": "p", "allowedDomains": ["allowed.test", "nowhere.test", "guarded.test", "127.0.0.1"] {{extra}} } ]
        }
        """;

    private static async Task<RawClient> ConnectAsync(TestProxy proxy, string host, int port)
    {
        var client = await RawClient.ConnectAsync(proxy.EndPoint);
        await client.SendAsync($"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n{PolicyEngines.Credentials()}\r\n");
        return client;
    }

    private static async Task WaitUntil(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting until {what}");
            await Task.Delay(10);
        }
    }

    private static async Task ReadBodyAsync(RawClient client, RawResponse head)
    {
        if (head["Content-Length"] is { } length)
        {
            await client.ReadExactlyAsync(int.Parse(length, System.Globalization.CultureInfo.InvariantCulture));
            return;
        }

        var body = new List<byte>();
        while (!body.ToArray().AsSpan().EndsWith("0\r\n\r\n"u8))
        {
            body.AddRange(await client.ReadExactlyAsync(1));
        }
    }

    [Theory]
    [InlineData("unresolved")]
    [InlineData("refused")]
    [InlineData("guarded")]
    [InlineData("sni_mismatch")]
    [InlineData("client_gone_before_hello")]
    public async Task A_tunnel_slot_is_given_back_on_every_path(string path)
    {
        var accepted = 0;
        await using var echo = new TcpOrigin(async s =>
        {
            Interlocked.Increment(ref accepted);
            var buffer = new byte[1024];
            int n;
            while ((n = await s.ReceiveAsync(buffer)) > 0)
            {
                await s.SendAsync(buffer.AsMemory(0, n));
            }
        });
        var closed = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        closed.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var closedPort = ((IPEndPoint)closed.LocalEndPoint!).Port;
        closed.Dispose();

        using var policy = new PolicyEngines(Policy([echo.Port, closedPort], cidrs: "\"127.0.0.1/32\""), maxTunnels: 2);
        var gate = new RecordingGate(new PolicyGate(policy.Engine, TimeProvider.System));
        var resolver = new MapResolver { ["allowed.test"] = IPAddress.Loopback, ["guarded.test"] = IPAddress.Parse("127.0.0.2") };
        await using var proxy = TestProxy.Start(o => o.HeaderTimeoutMs = 5000, gate, resolver);

        for (var i = 0; i < 3; i++)
        {
            switch (path)
            {
                case "unresolved":
                {
                    using var c = await ConnectAsync(proxy, "nowhere.test", echo.Port);
                    Assert.Equal(502, (await c.ReadHeadAsync()).Status);
                    break;
                }

                case "refused":
                {
                    using var c = await ConnectAsync(proxy, "127.0.0.1", closedPort);
                    Assert.Equal(502, (await c.ReadHeadAsync()).Status);
                    break;
                }

                case "guarded":
                {
                    using var c = await ConnectAsync(proxy, "guarded.test", echo.Port);
                    Assert.Equal(403, (await c.ReadHeadAsync()).Status);
                    break;
                }

                case "sni_mismatch":
                {
                    using var c = await ConnectAsync(proxy, "allowed.test", echo.Port);
                    Assert.Equal(200, (await c.ReadHeadAsync()).Status);
                    await c.SendAsync(await ClientHellos.CaptureAsync("elsewhere.test"));
                    Assert.Empty(await c.ReadToEndAsync());
                    break;
                }

                case "client_gone_before_hello":
                {
                    var c = await ConnectAsync(proxy, "allowed.test", echo.Port);
                    Assert.Equal(200, (await c.ReadHeadAsync()).Status);
                    c.Socket.LingerState = new LingerOption(true, 0);
                    c.Dispose();
                    await WaitUntil(() => gate.Open == 0, "the proxy noticed the client is gone");
                    break;
                }
            }
        }

        await WaitUntil(() => gate.Open == 0, "every refused tunnel's scope has exited");
        Assert.Equal(0, Volatile.Read(ref accepted));
        using var ok = await ConnectAsync(proxy, "127.0.0.1", echo.Port);
        Assert.Equal(200, (await ok.ReadHeadAsync()).Status);
        await ok.SendAsync("ping");
        Assert.Equal("ping", Encoding.ASCII.GetString(await ok.ReadExactlyAsync(4)));
    }

    [Fact]
    public async Task The_ClientHello_is_judged_before_anything_is_dialed_and_each_failure_has_its_reason()
    {
        var accepted = 0;
        await using var echo = new TcpOrigin(async s =>
        {
            Interlocked.Increment(ref accepted);
            await s.ReceiveAsync(new byte[1]);
        });
        using var policy = new PolicyEngines(Policy([echo.Port]));
        var gate = new RecordingGate(new PolicyGate(policy.Engine, TimeProvider.System));
        await using var proxy = TestProxy.Start(o => o.HeaderTimeoutMs = 5000, gate, new MapResolver { ["allowed.test"] = IPAddress.Loopback });

        var mismatch = await ClientHellos.CaptureAsync("elsewhere.test");
        using (var c = await ConnectAsync(proxy, "allowed.test", echo.Port))
        {
            Assert.Equal(200, (await c.ReadHeadAsync()).Status);
            await c.SendAsync(mismatch);
            Assert.Empty(await c.ReadToEndAsync());
        }

        // A ClientHello split across two records is reassembled before it is judged.
        using (var c = await ConnectAsync(proxy, "allowed.test", echo.Port))
        {
            Assert.Equal(200, (await c.ReadHeadAsync()).Status);
            await c.SendAsync(ClientHellos.SplitIntoTwoRecords(mismatch, 7));
            Assert.Empty(await c.ReadToEndAsync());
        }

        await WaitUntil(() => gate.Open == 0, "both refused tunnels exited");
        Assert.Equal(0, Volatile.Read(ref accepted));
        var records = gate.Records.ToArray();
        Assert.Equal(2, records.Length);
        Assert.All(records, r => Assert.Equal(("BLOCK", "sni_mismatch", 403), (r.Decision, r.Reason, r.Status)));
        Assert.All(gate.Closes, c => Assert.False(c.Established));

        // The right name, split the same way, passes and is relayed whole.
        var matching = await ClientHellos.CaptureAsync("allowed.test");
        using (var c = await ConnectAsync(proxy, "allowed.test", echo.Port))
        {
            Assert.Equal(200, (await c.ReadHeadAsync()).Status);
            await c.SendAsync(ClientHellos.SplitIntoTwoRecords(matching, 7));
            await WaitUntil(() => Volatile.Read(ref accepted) == 1, "the upstream is dialed after the hello passed");
        }
    }

    [Fact]
    public async Task A_ClientHello_that_never_completes_is_refused_as_sni_timeout_on_the_manual_clock()
    {
        await using var echo = TcpOrigin.Echo();
        using var policy = new PolicyEngines(Policy([echo.Port]));
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var gate = new RecordingGate(new PolicyGate(policy.Engine, clock));
        await using var proxy = TestProxy.Start(o => o.HeaderTimeoutMs = 5000, gate, new MapResolver { ["allowed.test"] = IPAddress.Loopback }, clock);
        using var c = await ConnectAsync(proxy, "allowed.test", echo.Port);
        Assert.Equal(200, (await c.ReadHeadAsync()).Status);
        var hello = await ClientHellos.CaptureAsync("allowed.test");
        await c.SendAsync(hello[..20]);
        await WaitUntil(() => { clock.Advance(TimeSpan.FromSeconds(1)); return !gate.Records.IsEmpty; }, "the hello times out");

        var record = Assert.Single(gate.Records);
        Assert.Equal(("BLOCK", "sni_timeout"), (record.Decision, record.Reason));
    }

    [Fact]
    public async Task Request_heads_and_bodies_are_egress_on_the_forward_path()
    {
        var requests = 0;
        await using var origin = await KestrelOrigin.StartAsync();
        using var policy = new PolicyEngines(Policy([origin.Port], sni: false, extra: ", \"egressBytesPerDay\": 4000"));
        var gate = new RecordingGate(new PolicyGate(policy.Engine, TimeProvider.System));
        await using var proxy = TestProxy.Start(gate: gate, resolver: new MapResolver { ["allowed.test"] = IPAddress.Loopback });
        _ = requests;

        // A 6,000-byte query string alone is over the budget: refused before a byte goes up.
        using (var c = await RawClient.ConnectAsync(proxy.EndPoint))
        {
            await c.SendAsync($"GET http://allowed.test:{origin.Port}/hello?q={new string('a', 6000)} HTTP/1.1\r\nHost: allowed.test:{origin.Port}\r\n{PolicyEngines.Credentials()}\r\n");
            var refused = await c.ReadHeadAsync();
            Assert.Equal(429, refused.Status);
            Assert.Equal("RATE_LIMITED", refused["X-ChronoGuard-Decision"]);
        }

        // The spent budget refuses the next request at its decision.
        using (var c = await RawClient.ConnectAsync(proxy.EndPoint))
        {
            await c.SendAsync($"GET http://allowed.test:{origin.Port}/hello HTTP/1.1\r\nHost: allowed.test:{origin.Port}\r\n{PolicyEngines.Credentials()}\r\n");
            Assert.Equal(429, (await c.ReadHeadAsync()).Status);
        }

        Assert.Contains(gate.Records, r => r.Reason == "egress_budget" && r.Status == 429);
    }

    [Fact]
    public async Task A_request_body_is_cut_when_it_would_overspend_the_egress_budget()
    {
        await using var origin = await KestrelOrigin.StartAsync();
        using var policy = new PolicyEngines(Policy([origin.Port], sni: false, extra: ", \"egressBytesPerDay\": 4000"));
        var gate = new RecordingGate(new PolicyGate(policy.Engine, TimeProvider.System));
        await using var proxy = TestProxy.Start(gate: gate, resolver: new MapResolver { ["allowed.test"] = IPAddress.Loopback });
        using var c = await RawClient.ConnectAsync(proxy.EndPoint);
        await c.SendAsync($"POST http://allowed.test:{origin.Port}/echo HTTP/1.1\r\nHost: allowed.test:{origin.Port}\r\nContent-Length: 10000\r\n{PolicyEngines.Credentials()}\r\n");
        await c.SendAsync(new byte[10_000]);

        var refused = await c.ReadHeadAsync();
        Assert.Equal(429, refused.Status);
        await WaitUntil(() => gate.Open == 0, "the request's scope exited");
        var close = Assert.Single(gate.Closes);
        Assert.Equal("egress_budget", close.Reason);
        Assert.InRange(close.BytesUp, 1, 4000);
    }

    [Fact]
    public async Task A_kept_upstream_is_judged_again_after_a_reload()
    {
        await using var origin = await KestrelOrigin.StartAsync();
        using var policy = new PolicyEngines(Policy([origin.Port], sni: false));
        var gate = new RecordingGate(new PolicyGate(policy.Engine, TimeProvider.System));
        await using var proxy = TestProxy.Start(gate: gate, resolver: new MapResolver { ["allowed.test"] = IPAddress.Loopback });
        using var c = await RawClient.ConnectAsync(proxy.EndPoint);
        var get = $"GET http://allowed.test:{origin.Port}/hello HTTP/1.1\r\nHost: allowed.test:{origin.Port}\r\n{PolicyEngines.Credentials()}\r\n";
        await c.SendAsync(get);
        var first = await c.ReadHeadAsync();
        Assert.Equal(200, first.Status);
        await ReadBodyAsync(c, first);

        policy.Reload(Policy([origin.Port], cidrs: "", sni: false));
        await c.SendAsync(get);

        var second = await c.ReadHeadAsync();
        Assert.Equal(403, second.Status);
        Assert.Equal("BLOCK", second["X-ChronoGuard-Decision"]);
        Assert.Equal("private_destination", gate.Records.Last().Reason);
    }

    [Fact]
    public async Task A_client_that_resets_mid_body_gives_back_its_upstream_at_once()
    {
        var upstreamEnded = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var headSeen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var origin = new TcpOrigin(async s =>
        {
            // An origin that reads the body and never answers until it has all of it.
            var buffer = new byte[4096];
            try
            {
                while (await s.ReceiveAsync(buffer) > 0)
                {
                    headSeen.TrySetResult();
                }
            }
            finally
            {
                upstreamEnded.TrySetResult();
            }
        });
        var gate = new RecordingGate();
        await using var proxy = TestProxy.Start(gate: gate);
        var c = await RawClient.ConnectAsync(proxy.EndPoint);
        await c.SendAsync($"POST http://127.0.0.1:{origin.Port}/upload HTTP/1.1\r\nHost: 127.0.0.1:{origin.Port}\r\nContent-Length: 100000\r\n\r\n0123456789");
        await headSeen.Task.WaitAsync(TimeSpan.FromSeconds(10));
        c.Socket.LingerState = new LingerOption(true, 0);
        c.Dispose();

        await upstreamEnded.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await WaitUntil(() => gate.Open == 0, "the request's scope exited");
    }

    [Fact]
    public async Task A_stalled_request_body_is_refused_408_on_the_manual_clock()
    {
        var bodySeen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var origin = new TcpOrigin(async s =>
        {
            var buffer = new byte[4096];
            var received = new StringBuilder();
            int n;
            while ((n = await s.ReceiveAsync(buffer)) > 0)
            {
                received.Append(Encoding.ASCII.GetString(buffer, 0, n));
                if (received.ToString().EndsWith("0123456789", StringComparison.Ordinal))
                {
                    bodySeen.TrySetResult();
                }
            }
        });
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var gate = new RecordingGate();
        await using var proxy = TestProxy.Start(o => o.BodyTimeoutMs = 5000, gate, time: clock);
        using var c = await RawClient.ConnectAsync(proxy.EndPoint);
        await c.SendAsync($"POST http://127.0.0.1:{origin.Port}/upload HTTP/1.1\r\nHost: 127.0.0.1:{origin.Port}\r\nContent-Length: 100\r\n\r\n0123456789");
        await bodySeen.Task.WaitAsync(TimeSpan.FromSeconds(10));

        await WaitUntil(() => { clock.Advance(TimeSpan.FromSeconds(1)); return c.Socket.Available > 0; }, "the body times out");

        var refused = await c.ReadHeadAsync();
        Assert.Equal(408, refused.Status);
        await WaitUntil(() => { clock.Advance(TimeSpan.FromSeconds(1)); return gate.Open == 0; }, "the request's scope exited (after its linger)");

        // One request, one decision record (ALLOW 200, written before the body); the 408 is told by
        // the close record, and the answer names the decision record.
        var record = Assert.Single(gate.Records);
        Assert.Equal(("ALLOW", 200), (record.Decision, record.Status));
        Assert.Equal(record.Seq.ToString(System.Globalization.CultureInfo.InvariantCulture), refused["X-ChronoGuard-Audit-Seq"]);
        var close = Assert.Single(gate.Closes);
        Assert.Equal(("body_timeout", 408), (close.Reason, close.Status));
    }

    [Fact]
    public async Task Bad_chunk_framing_is_refused_400_and_audited_without_waiting_for_the_origin()
    {
        await using var origin = new TcpOrigin(async s =>
        {
            var buffer = new byte[4096];
            while (await s.ReceiveAsync(buffer) > 0)
            {
            }
        });
        var gate = new RecordingGate();
        await using var proxy = TestProxy.Start(gate: gate);
        using var c = await RawClient.ConnectAsync(proxy.EndPoint);
        await c.SendAsync($"POST http://127.0.0.1:{origin.Port}/upload HTTP/1.1\r\nHost: 127.0.0.1:{origin.Port}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n");

        var refused = await c.ReadHeadAsync();
        Assert.Equal(400, refused.Status);
        Assert.Equal("DENY", refused["X-ChronoGuard-Decision"]);
        var record = Assert.Single(gate.Records);
        Assert.Equal(("ALLOW", 200), (record.Decision, record.Status));
        Assert.Equal(record.Seq.ToString(System.Globalization.CultureInfo.InvariantCulture), refused["X-ChronoGuard-Audit-Seq"]);
        c.Dispose();
        await WaitUntil(() => !gate.Closes.IsEmpty, "the request's scope exited");
        var close = Assert.Single(gate.Closes);
        Assert.Equal(("bad_chunk_size", 400), (close.Reason, close.Status));
    }

    [Fact]
    public async Task A_header_timeout_is_driven_by_the_manual_clock()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var gate = new RecordingGate();
        await using var proxy = TestProxy.Start(o => o.HeaderTimeoutMs = 10_000, gate, time: clock);
        using var c = await RawClient.ConnectAsync(proxy.EndPoint);
        await c.SendAsync("GET http://a.test/ HTTP/1.1\r\nHost: a.te");
        await WaitUntil(() => proxy.Server.ActiveConnections == 1, "the connection is accepted");

        clock.Advance(TimeSpan.FromSeconds(11));

        Assert.Equal(408, (await c.ReadHeadAsync()).Status);
        Assert.Equal("header_timeout", Assert.Single(gate.Records).Reason);
    }

    [Fact]
    public async Task A_connect_deadline_is_driven_by_the_manual_clock()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var gate = new RecordingGate();
        // The head timeout is out of reach, so only the connect deadline can fire however early the clock moves.
        await using var proxy = TestProxy.Start(o => { o.ConnectTimeoutMs = 10_000; o.HeaderTimeoutMs = 600_000; }, gate, new MapResolver { Hang = true }, clock);
        using var c = await RawClient.ConnectAsync(proxy.EndPoint);
        await c.SendAsync("CONNECT slow.test:443 HTTP/1.1\r\nHost: slow.test:443\r\n\r\n");
        await WaitUntil(() => !gate.Closes.IsEmpty || proxy.Server.ActiveConnections == 1, "the request is in flight");

        await WaitUntil(() => { clock.Advance(TimeSpan.FromSeconds(2)); return !gate.Records.IsEmpty; }, "the deadline passes");

        Assert.Equal(504, (await c.ReadHeadAsync()).Status);
        Assert.Equal("upstream_timeout", Assert.Single(gate.Records).Reason);
    }

    [Fact]
    public async Task A_challenge_without_credentials_is_auth_required_and_wrong_credentials_keep_the_claimed_id()
    {
        using var policy = new PolicyEngines(Policy([443]));
        var gate = new RecordingGate(new PolicyGate(policy.Engine, TimeProvider.System));
        await using var proxy = TestProxy.Start(gate: gate);

        using (var c = await RawClient.ConnectAsync(proxy.EndPoint))
        {
            await c.SendAsync("CONNECT allowed.test:443 HTTP/1.1\r\nHost: allowed.test:443\r\n\r\n");
            var challenge = await c.ReadHeadAsync();
            Assert.Equal(407, challenge.Status);
            Assert.NotNull(challenge["Proxy-Authenticate"]);
        }

        using (var c = await RawClient.ConnectAsync(proxy.EndPoint))
        {
            var wrong = Encoding.ASCII.GetString(ChronoGuard.Tests.Policy.PolicyFixture.Basic("bot", "not-the-token"));
            await c.SendAsync($"CONNECT allowed.test:443 HTTP/1.1\r\nHost: allowed.test:443\r\nProxy-Authorization: {wrong}\r\n\r\n");
            Assert.Equal(407, (await c.ReadHeadAsync()).Status);
        }

        var records = gate.Records.ToArray();
        Assert.Equal(("DENY", "auth_required", 407), (records[0].Decision, records[0].Reason, records[0].Status));
        Assert.Equal(("DENY", "bad_credentials", 407), (records[1].Decision, records[1].Reason, records[1].Status));
        var agents = gate.Agents.ToArray();
        Assert.Equal((null, null), agents[0]);
        Assert.Equal((null, "bot"), agents[1]);
    }
}
