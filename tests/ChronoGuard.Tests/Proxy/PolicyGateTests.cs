using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using ChronoGuard.Policy;
using ChronoGuard.Proxy;
using ChronoGuard.Tests.Policy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Proxy;

/// <summary>The real proxy with a real policy: identity, refusals, rebinding, SNI, reload.</summary>
public sealed class PolicyGateTests
{
    private static string PolicyJson(int originPort, string allowed = "\"localhost\", \"allowed.test\", \"127.0.0.1\"") => $$"""
        {
          "version": 1,
          "network": { "allowPrivateDestinations": false, "allowedCidrs": ["127.0.0.0/8"], "allowedPorts": [{{originPort}}], "requireSniMatch": true },
          "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
          "policies": [ { "name": "p", "allowedDomains": [{{allowed}}], "blockedDomains": ["blocked.test"] } ]
        }
        """;

    private static (PolicyEngine Engine, string Path, TempDir Dir) Engine(string json)
    {
        var dir = new TempDir();
        var path = dir.File("policy.json");
        File.WriteAllText(path, json.Replace("$TOKEN", PolicyFixture.TokenSha, StringComparison.Ordinal));
        var engine = new PolicyEngine(path, 512, TimeProvider.System);
        Assert.True(engine.Reload().Ok);
        return (engine, path, dir);
    }

    [Fact]
    public async Task HttpClient_sends_credentials_after_the_407_challenge_and_gets_through()
    {
        await using var origin = await KestrelOrigin.StartAsync(tls: true);
        var (engine, _, dir) = Engine(PolicyJson(origin.Port));
        using var _d = dir;
        await using var proxy = TestProxy.Start(gate: new PolicyGate(engine, TimeProvider.System));
        using var handler = new SocketsHttpHandler
        {
            Proxy = new WebProxy(proxy.Uri) { Credentials = new NetworkCredential("bot", PolicyFixture.Token) },
        };
        handler.SslOptions.RemoteCertificateValidationCallback = (_, cert, _, _) => cert!.GetCertHashString() == TestCertificates.Server.GetCertHashString();
        using var http = new HttpClient(handler);

        Assert.Equal("hello from origin", await http.GetStringAsync(new Uri($"https://localhost:{origin.Port}/hello")));

        using var anonymous = proxy.CreateClient();
        var refused = await Assert.ThrowsAsync<HttpRequestException>(() => anonymous.GetStringAsync(new Uri($"https://localhost:{origin.Port}/hello")));
        Assert.Equal(HttpStatusCode.ProxyAuthenticationRequired, refused.StatusCode);
    }

    [Theory]
    [InlineData("blocked.test", 403, "BLOCK")]
    [InlineData("elsewhere.test", 403, "DENY")]
    public async Task Refusals_carry_the_decision(string host, int status, string decision)
    {
        var (engine, _, dir) = Engine(PolicyJson(80));
        using var _d = dir;
        await using var proxy = TestProxy.Start(gate: new PolicyGate(engine, TimeProvider.System));
        using var client = await RawClient.ConnectAsync(proxy.EndPoint);
        await client.SendAsync($"GET http://{host}/ HTTP/1.1\r\nHost: {host}\r\nProxy-Authorization: {Encoding.ASCII.GetString(PolicyFixture.Basic("bot"))}\r\n\r\n");

        var response = await client.ReadHeadAsync();
        Assert.Equal(status, response.Status);
        Assert.Equal(decision, response["X-ChronoGuard-Decision"]);
    }

    [Theory]
    [InlineData("169.254.169.254")]
    [InlineData("::ffff:127.0.0.1")]
    [InlineData("10.0.0.7")]
    public async Task An_allowed_name_resolving_to_a_private_address_is_blocked_before_connecting(string rebound)
    {
        var (engine, _, dir) = Engine(PolicyJson(443).Replace("\"allowedCidrs\": [\"127.0.0.0/8\"]", "\"allowedCidrs\": []", StringComparison.Ordinal));
        using var _d = dir;
        var resolver = new MapResolver { ["allowed.test"] = IPAddress.Parse(rebound) };
        await using var proxy = TestProxy.Start(gate: new PolicyGate(engine, TimeProvider.System), resolver: resolver);
        using var client = await RawClient.ConnectAsync(proxy.EndPoint);
        await client.SendAsync($"CONNECT allowed.test:443 HTTP/1.1\r\nProxy-Authorization: {Encoding.ASCII.GetString(PolicyFixture.Basic("bot"))}\r\n\r\n");

        var response = await client.ReadHeadAsync();
        Assert.Equal(403, response.Status);
        Assert.Equal("BLOCK", response["X-ChronoGuard-Decision"]);
    }

    [Theory]
    [InlineData("localhost", true)]
    [InlineData("evil.test", false)]
    [InlineData("", false)]
    public async Task The_ClientHello_must_name_the_CONNECT_host(string sni, bool passes)
    {
        await using var origin = await KestrelOrigin.StartAsync(tls: true);
        var (engine, _, dir) = Engine(PolicyJson(origin.Port));
        using var _d = dir;
        await using var proxy = TestProxy.Start(gate: new PolicyGate(engine, TimeProvider.System));
        using var client = await RawClient.ConnectAsync(proxy.EndPoint);
        await client.SendAsync($"CONNECT localhost:{origin.Port} HTTP/1.1\r\nProxy-Authorization: {Encoding.ASCII.GetString(PolicyFixture.Basic("bot"))}\r\n\r\n");
        Assert.Equal(200, (await client.ReadHeadAsync()).Status);

        using var tls = new SslStream(new NetworkStream(client.Socket, ownsSocket: false));
        var handshake = tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = sni,
            RemoteCertificateValidationCallback = (_, cert, _, _) => cert!.GetCertHashString() == TestCertificates.Server.GetCertHashString(),
        });
        if (passes)
        {
            await handshake.WaitAsync(TimeSpan.FromSeconds(10));
            Assert.True(tls.IsAuthenticated);
        }
        else
        {
            await Assert.ThrowsAnyAsync<Exception>(() => handshake.WaitAsync(TimeSpan.FromSeconds(10)));
            Assert.Empty(origin.ConnectionIds);
        }
    }

    [Fact]
    public async Task Reload_closes_open_tunnels_the_new_policy_denies_and_keeps_the_rest()
    {
        await using var echo = TcpOrigin.Echo();
        var json = PolicyJson(echo.Port).Replace("\"requireSniMatch\": true", "\"requireSniMatch\": false", StringComparison.Ordinal);
        var (engine, path, dir) = Engine(json);
        using var _d = dir;
        var gate = RecordingPolicyGate(engine);
        await using var proxy = TestProxy.Start(gate: gate, resolver: new MapResolver { ["allowed.test"] = IPAddress.Loopback, ["localhost"] = IPAddress.Loopback });
        async Task<RawClient> Open(string host)
        {
            var c = await RawClient.ConnectAsync(proxy.EndPoint);
            await c.SendAsync($"CONNECT {host}:{echo.Port} HTTP/1.1\r\nProxy-Authorization: {Encoding.ASCII.GetString(PolicyFixture.Basic("bot"))}\r\n\r\n");
            Assert.Equal(200, (await c.ReadHeadAsync()).Status);
            return c;
        }

        using var kept = await Open("localhost");
        using var revoked = await Open("allowed.test");
        File.WriteAllText(path, PolicyJson(echo.Port, "\"localhost\"").Replace("\"requireSniMatch\": true", "\"requireSniMatch\": false", StringComparison.Ordinal).Replace("$TOKEN", PolicyFixture.TokenSha, StringComparison.Ordinal));
        Assert.True(engine.Reload().Ok);

        Assert.Empty(await revoked.ReadToEndAsync(timeoutMs: 10_000));
        Assert.Equal("policy_revoked", await CloseReasonOf(gate, "allowed.test"));
        await kept.SendAsync("still open");
        Assert.Equal("still open", Encoding.ASCII.GetString(await kept.ReadExactlyAsync(10)));
    }

    /// <summary>
    /// Revocation goes by what a request holds, not by its phase: a forwarded response still streaming
    /// (server-sent events) is closed when a reload denies its host, like a tunnel.
    /// </summary>
    [Fact]
    public async Task Reload_closes_a_forwarded_response_still_streaming_to_a_host_the_new_policy_denies()
    {
        await using var events = new TcpOrigin(async s =>
        {
            var buffer = new byte[4096];
            await s.ReceiveAsync(buffer);
            await s.SendAsync("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"u8.ToArray());
            // The stream goes on until the proxy closes it.
            while (await s.ReceiveAsync(buffer) > 0)
            {
            }
        });
        var (engine, path, dir) = Engine(PolicyJson(events.Port));
        using var _d = dir;
        var gate = RecordingPolicyGate(engine);
        await using var proxy = TestProxy.Start(gate: gate, resolver: new MapResolver { ["allowed.test"] = IPAddress.Loopback });
        using var client = await RawClient.ConnectAsync(proxy.EndPoint);
        await client.SendAsync($"GET http://allowed.test:{events.Port}/events HTTP/1.1\r\nHost: allowed.test:{events.Port}\r\nProxy-Authorization: {Encoding.ASCII.GetString(PolicyFixture.Basic("bot"))}\r\n\r\n");
        Assert.Equal(200, (await client.ReadHeadAsync()).Status);
        Assert.Equal("5\r\nhello\r\n", Encoding.ASCII.GetString(await client.ReadExactlyAsync(10)));

        File.WriteAllText(path, PolicyJson(events.Port, "\"localhost\"").Replace("$TOKEN", PolicyFixture.TokenSha, StringComparison.Ordinal));
        Assert.True(engine.Reload().Ok);

        Assert.Empty(await client.ReadToEndAsync(timeoutMs: 10_000));
        // The one request's close record is the signal: no polling.
        await gate.FirstClose.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(("allowed.test", "policy_revoked"), gate.Closes.Select(c => (c.Host, c.Reason)).Single());
    }

    /// <summary>
    /// The recheck judges a request in flight with its method and path, not only its host: a reload that
    /// adds a path rule ends a long response on that path, and leaves one on another path of the same
    /// host alone (it used to end neither).
    /// </summary>
    [Fact]
    public async Task Reload_with_a_new_path_rule_closes_a_streaming_response_on_that_path_only()
    {
        var more = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var events = new TcpOrigin(async s =>
        {
            var buffer = new byte[4096];
            await s.ReceiveAsync(buffer);
            await s.SendAsync("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"u8.ToArray());
            await more.Task;
            await s.SendAsync("5\r\nagain\r\n"u8.ToArray());
            while (await s.ReceiveAsync(buffer) > 0)
            {
            }
        });
        var (engine, path, dir) = Engine(PolicyJson(events.Port));
        using var _d = dir;
        var gate = RecordingPolicyGate(engine);
        await using var proxy = TestProxy.Start(gate: gate, resolver: new MapResolver { ["allowed.test"] = IPAddress.Loopback });

        async Task<RawClient> StreamAsync(string target)
        {
            var client = await RawClient.ConnectAsync(proxy.EndPoint);
            await client.SendAsync($"GET http://allowed.test:{events.Port}{target} HTTP/1.1\r\nHost: allowed.test:{events.Port}\r\nProxy-Authorization: {Encoding.ASCII.GetString(PolicyFixture.Basic("bot"))}\r\n\r\n");
            Assert.Equal(200, (await client.ReadHeadAsync()).Status);
            Assert.Equal("5\r\nhello\r\n", Encoding.ASCII.GetString(await client.ReadExactlyAsync(10)));
            return client;
        }

        using var denied = await StreamAsync("/events/a;v=1?x=1");
        using var other = await StreamAsync("/news");

        const string Rule = ", \"rules\": [ { \"name\": \"no-events\", \"action\": \"deny\", \"when\": [ { \"field\": \"path\", \"op\": \"starts_with\", \"value\": \"/events\" } ] } ]";
        File.WriteAllText(path, PolicyJson(events.Port).Replace("\"blockedDomains\": [\"blocked.test\"]", "\"blockedDomains\": [\"blocked.test\"]" + Rule, StringComparison.Ordinal).Replace("$TOKEN", PolicyFixture.TokenSha, StringComparison.Ordinal));
        var reload = engine.Reload();
        Assert.True(reload.Ok, reload.ToString());

        Assert.Empty(await denied.ReadToEndAsync(timeoutMs: 10_000));
        await gate.FirstClose.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(("allowed.test", "policy_revoked"), gate.Closes.Select(c => (c.Host, c.Reason)).Single());

        // The other path's stream was judged by the same heartbeat and kept: it still relays.
        more.SetResult();
        Assert.Equal("5\r\nagain\r\n", Encoding.ASCII.GetString(await other.ReadExactlyAsync(10)));
        Assert.Single(gate.Closes);
    }

    [Fact]
    public async Task A_tunnel_opened_inside_its_time_window_is_closed_when_the_window_closes()
    {
        await using var echo = TcpOrigin.Echo();
        var json = PolicyJson(echo.Port)
            .Replace("\"requireSniMatch\": true", "\"requireSniMatch\": false", StringComparison.Ordinal)
            .Replace("\"blockedDomains\": [\"blocked.test\"]", "\"timeRestrictions\": { \"timezone\": \"UTC\", \"ranges\": [ { \"start\": \"09:00\", \"end\": \"10:00\" } ] }", StringComparison.Ordinal);
        var clock = new ManualTimeProvider(new DateTimeOffset(2026, 11, 25, 9, 59, 30, TimeSpan.Zero));
        var dir = new TempDir();
        using var _d = dir;
        var path = dir.File("policy.json");
        File.WriteAllText(path, json.Replace("$TOKEN", PolicyFixture.TokenSha, StringComparison.Ordinal));
        var engine = new PolicyEngine(path, 512, clock);
        Assert.True(engine.Reload().Ok);
        var gate = RecordingPolicyGate(engine, clock);
        await using var proxy = TestProxy.Start(gate: gate, resolver: new MapResolver { ["allowed.test"] = IPAddress.Loopback });
        using var tunnel = await RawClient.ConnectAsync(proxy.EndPoint);
        await tunnel.SendAsync($"CONNECT allowed.test:{echo.Port} HTTP/1.1\r\nProxy-Authorization: {Encoding.ASCII.GetString(PolicyFixture.Basic("bot"))}\r\n\r\n");
        Assert.Equal(200, (await tunnel.ReadHeadAsync()).Status);
        await tunnel.SendAsync("inside");
        Assert.Equal("inside", Encoding.ASCII.GetString(await tunnel.ReadExactlyAsync(6)));

        clock.Advance(TimeSpan.FromMinutes(1));

        Assert.Empty(await tunnel.ReadToEndAsync(timeoutMs: 10_000));
        Assert.Equal("window_closed", await CloseReasonOf(gate, "allowed.test"));
    }

    [Fact]
    public async Task Reload_under_concurrent_load_fails_and_stalls_nothing()
    {
        await using var origin = await KestrelOrigin.StartAsync();
        var (engine, path, dir) = Engine(PolicyJson(origin.Port));
        using var _d = dir;
        await using var proxy = TestProxy.Start(gate: new PolicyGate(engine, TimeProvider.System));
        using var handler = new SocketsHttpHandler { Proxy = new WebProxy(proxy.Uri) { Credentials = new NetworkCredential("bot", PolicyFixture.Token) } };
        using var http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(20) };

        using var stop = new CancellationTokenSource();
        var reloads = 0;
        var reloader = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                // Alternate between the policy and a broken file: the broken one must be rejected
                // and the last good one keep serving.
                File.WriteAllText(path, (reloads % 3 == 2 ? "{ broken" : PolicyJson(origin.Port)).Replace("$TOKEN", PolicyFixture.TokenSha, StringComparison.Ordinal));
                engine.Reload();
                reloads++;
                await Task.Yield();
            }
        });
        var clients = Enumerable.Range(0, 8).Select(async _ =>
        {
            for (var i = 0; i < 100; i++)
            {
                Assert.Equal("hello from origin", await http.GetStringAsync(new Uri($"http://127.0.0.1:{origin.Port}/hello")));
            }
        }).ToArray();

        await Task.WhenAll(clients);
        await stop.CancelAsync();
        await reloader;
        Assert.True(reloads > 10, $"only {reloads} reloads happened during the load");
    }

    private static RecordingGate RecordingPolicyGate(PolicyEngine engine, TimeProvider? time = null) => new(new PolicyGate(engine, time ?? TimeProvider.System));

    private static async Task<string> CloseReasonOf(RecordingGate gate, string host)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            foreach (var close in gate.Closes)
            {
                if (close.Host == host)
                {
                    return close.Reason;
                }
            }

            await Task.Delay(20);
        }

        throw new TimeoutException($"no close for {host}");
    }
}
