using System.Net;
using System.Net.Sockets;
using System.Text;
using ChronoGuard.Policy;
using ChronoGuard.Proxy;
using ChronoGuard.Tests.Policy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Socks;

/// <summary>
/// SOCKS5 (SPEC §8) through the real proxy with a real policy, over raw sockets: the same decisions,
/// guard, SNI check, budgets and revocation as HTTP CONNECT, replies mapped from decisions, and every
/// malformed or refused negotiation answered with its phase's reply (or closed) and audited.
/// </summary>
public sealed class SocksProxyTests
{
    private static string PolicyJson(int port, string extra = "") => $$"""
        {
          "version": 1,
          "network": { "allowPrivateDestinations": false, "allowedCidrs": ["127.0.0.0/8", "::1/128"], "allowedPorts": [{{port}}], "requireSniMatch": false {{extra}} },
          "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
          "policies": [ { "name": "p", "allowedDomains": ["allowed.test", "127.0.0.1", "localhost"], "blockedDomains": ["blocked.test"] } ]
        }
        """;

    private static (TestProxy Proxy, RecordingGate Gate, PolicyEngines Engines) Start(string policy, IDnsResolver? resolver = null, Action<ProxyOptions>? configure = null, string? boundAgent = null, int maxTunnels = 512)
    {
        var engines = new PolicyEngines(policy, maxTunnels);
        var gate = new RecordingGate(new PolicyGate(engines.Engine, TimeProvider.System));
        var proxy = TestProxy.Start(configure, gate, resolver ?? new MapResolver { ["allowed.test"] = IPAddress.Loopback, ["blocked.test"] = IPAddress.Loopback }, listeners: new SocksConnectionFactory(boundAgent));
        return (proxy, gate, engines);
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("allowed.test")]
    public async Task An_allowed_connect_relays_both_ways_and_replies_with_the_dialed_address(string host)
    {
        await using var echo = TcpOrigin.Echo();
        var (proxy, gate, engines) = Start(PolicyJson(echo.Port));
        await using var _p = proxy;
        using var _e = engines;

        var (reply, bound, client) = await SocksClient.ConnectAsync(proxy.EndPointOf(1), host, echo.Port, "bot", PolicyFixture.Token);
        using var _c = client;

        Assert.Equal(0, reply);
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, echo.Port), bound);
        await client.SendAsync("ping through socks");
        Assert.Equal("ping through socks", Encoding.ASCII.GetString(await client.ReadExactlyAsync(18)));
        var record = Assert.Single(gate.Records);
        Assert.Equal((200, "ALLOW"), (record.Status, record.Decision));
        Assert.Equal(ChronoGuard.Audit.AuditIdentity.Credential, Assert.Single(gate.Identities));
    }

    [Fact]
    public async Task An_IPv6_destination_is_dialed_and_answered_in_its_own_family()
    {
        using var listener = new Socket(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.IPv6Loopback, 0));
        listener.Listen(1);
        var port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        // An IPv6 literal is no domain pattern: allowed by the default action, guarded by allowedCidrs.
        var (proxy, _, engines) = Start(PolicyJson(port).Replace("\"version\": 1,", "\"version\": 1, \"defaultAction\": \"allow\",", StringComparison.Ordinal));
        await using var _p = proxy;
        using var _e = engines;

        var (reply, bound, client) = await SocksClient.ConnectAsync(proxy.EndPointOf(1), "::1", port, "bot", PolicyFixture.Token);
        using var _c = client;
        using var accepted = await listener.AcceptAsync();

        Assert.Equal(0, reply);
        Assert.Equal(new IPEndPoint(IPAddress.IPv6Loopback, port), bound);
    }

    [Theory]
    [InlineData("blocked.test", 2, 403, "BLOCK", "domain_blocked")]
    [InlineData("elsewhere.test", 2, 403, "DENY", "default_deny")]
    [InlineData("10.0.0.7", 2, 403, "BLOCK", "private_destination")]
    public async Task A_refused_request_gets_not_allowed_by_ruleset_and_its_record(string host, byte expected, int status, string decision, string reason)
    {
        var (proxy, gate, engines) = Start(PolicyJson(9).Replace("\"allowed.test\",", "\"allowed.test\", \"10.0.0.7\",", StringComparison.Ordinal));
        await using var _p = proxy;
        using var _e = engines;

        var (reply, _, client) = await SocksClient.ConnectAsync(proxy.EndPointOf(1), host, 9, "bot", PolicyFixture.Token);
        using var _c = client;

        Assert.Equal(expected, reply);
        Assert.Empty(await client.ReadToEndAsync());
        var record = Assert.Single(gate.Records);
        Assert.Equal((status, decision), (record.Status, record.Decision));
        Assert.Equal(reason, record.Reason);
    }

    [Fact]
    public async Task Upstream_failures_map_to_their_reply_codes()
    {
        using var closed = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        closed.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var port = ((IPEndPoint)closed.LocalEndPoint!).Port; // bound, never listening: connection refused
        var (proxy, gate, engines) = Start(PolicyJson(port), new MapResolver { ["allowed.test"] = IPAddress.Loopback });
        await using var _p = proxy;
        using var _e = engines;

        var (refused, _, c1) = await SocksClient.ConnectAsync(proxy.EndPointOf(1), "127.0.0.1", port, "bot", PolicyFixture.Token);
        c1.Dispose();
        var (unresolved, _, c2) = await SocksClient.ConnectAsync(proxy.EndPointOf(1), "localhost", port, "bot", PolicyFixture.Token);
        c2.Dispose();

        Assert.Equal(5, refused);
        Assert.Equal(4, unresolved);
        Assert.Equal(["upstream_refused", "upstream_unresolved"], gate.Records.Select(r => r.Reason));
    }

    [Fact]
    public async Task Without_a_login_an_unbound_listener_offers_no_method_and_a_wrong_login_fails()
    {
        var (proxy, gate, engines) = Start(PolicyJson(9));
        await using var _p = proxy;
        using var _e = engines;

        using (var anonymous = await RawClient.ConnectAsync(proxy.EndPointOf(1)))
        {
            await anonymous.SendAsync(SocksClient.Greeting(0));
            Assert.Equal([5, 0xFF], await anonymous.ReadToEndAsync());
        }

        using (var wrong = await RawClient.ConnectAsync(proxy.EndPointOf(1)))
        {
            await wrong.SendAsync(SocksClient.Greeting(0, 2));
            Assert.Equal([5, 2], await wrong.ReadExactlyAsync(2));
            await wrong.SendAsync(SocksClient.Login("bot", "not-the-token"));
            Assert.Equal([1, 1], await wrong.ReadToEndAsync());
        }

        Assert.Equal([(407, "auth_required"), (407, "bad_credentials")], gate.Records.Select(r => (r.Status, r.Reason)));
    }

    [Fact]
    public async Task A_listener_bound_to_an_agent_needs_no_login_and_records_the_listener()
    {
        await using var echo = TcpOrigin.Echo();
        var (proxy, gate, engines) = Start(PolicyJson(echo.Port), boundAgent: "bot");
        await using var _p = proxy;
        using var _e = engines;

        var (reply, _, client) = await SocksClient.ConnectAsync(proxy.EndPointOf(1), "127.0.0.1", echo.Port);
        using var _c = client;

        Assert.Equal(0, reply);
        Assert.Equal(ChronoGuard.Audit.AuditIdentity.Listener, Assert.Single(gate.Identities));
        Assert.Equal("bot", Assert.Single(gate.Agents).Agent);
    }

    public static TheoryData<string, byte[], byte[]> Hostile => new()
    {
        // name, bytes sent, exact bytes answered before the close
        { "SOCKS4", [4, 1, 0, 80, 127, 0, 0, 1, 0], [] },
        { "HTTP", "GET / HTTP/1.1\r\n\r\n"u8.ToArray(), [] },
        { "no methods", [5, 0], [5, 0xFF] },
        { "login version 2", [5, 1, 2, 2, 3, 98, 111, 116, 1, 120], [5, 2, 1, 1] },
        { "BIND", [5, 1, 2, .. SocksClient.Login("bot", PolicyFixture.Token), .. SocksClient.ConnectTo("127.0.0.1", 80, command: 2)], [5, 2, 1, 0, 5, 7, 0, 1, 0, 0, 0, 0, 0, 0] },
        { "UDP ASSOCIATE", [5, 1, 2, .. SocksClient.Login("bot", PolicyFixture.Token), .. SocksClient.ConnectTo("127.0.0.1", 80, command: 3)], [5, 2, 1, 0, 5, 7, 0, 1, 0, 0, 0, 0, 0, 0] },
        { "address type 9", [5, 1, 2, .. SocksClient.Login("bot", PolicyFixture.Token), 5, 1, 0, 9, 1, 2, 3, 4, 0, 80], [5, 2, 1, 0, 5, 8, 0, 1, 0, 0, 0, 0, 0, 0] },
        { "reserved byte set", [5, 1, 2, .. SocksClient.Login("bot", PolicyFixture.Token), 5, 1, 7, 1, 127, 0, 0, 1, 0, 80], [5, 2, 1, 0, 5, 1, 0, 1, 0, 0, 0, 0, 0, 0] },
        { "request version 4", [5, 1, 2, .. SocksClient.Login("bot", PolicyFixture.Token), 4, 1, 0, 1, 127, 0, 0, 1, 0, 80], [5, 2, 1, 0, 5, 1, 0, 1, 0, 0, 0, 0, 0, 0] },
        { "empty name", [5, 1, 2, .. SocksClient.Login("bot", PolicyFixture.Token), 5, 1, 0, 3, 0, 0, 80], [5, 2, 1, 0, 5, 1, 0, 1, 0, 0, 0, 0, 0, 0] },
        { "name with a 64-byte label", [5, 1, 2, .. SocksClient.Login("bot", PolicyFixture.Token), .. SocksClient.ConnectTo(new string('a', 64) + ".test", 80)], [5, 2, 1, 0, 5, 1, 0, 1, 0, 0, 0, 0, 0, 0] },
        { "255-byte name", [5, 1, 2, .. SocksClient.Login("bot", PolicyFixture.Token), .. SocksClient.ConnectTo(string.Join('.', Enumerable.Repeat(new string('b', 63), 4))[..255], 80)], [5, 2, 1, 0, 5, 1, 0, 1, 0, 0, 0, 0, 0, 0] },
        { "name a..b", [5, 1, 2, .. SocksClient.Login("bot", PolicyFixture.Token), .. SocksClient.ConnectTo("a..b", 80)], [5, 2, 1, 0, 5, 1, 0, 1, 0, 0, 0, 0, 0, 0] },
        { "port 0", [5, 1, 2, .. SocksClient.Login("bot", PolicyFixture.Token), .. SocksClient.ConnectTo("127.0.0.1", 0)], [5, 2, 1, 0, 5, 1, 0, 1, 0, 0, 0, 0, 0, 0] },
        { "empty login", [5, 1, 2, 1, 0, 0], [5, 2, 1, 1] },
    };

    [Theory]
    [MemberData(nameof(Hostile))]
    public async Task Hostile_negotiations_get_their_reply_or_a_close_and_a_record_never_a_dial(string name, byte[] sent, byte[] answered)
    {
        var (proxy, gate, engines) = Start(PolicyJson(80));
        await using var _p = proxy;
        using var _e = engines;

        using var client = await RawClient.ConnectAsync(proxy.EndPointOf(1));
        await client.SendAsync(sent);
        client.Socket.Shutdown(SocketShutdown.Send);

        Assert.Equal(answered, await client.ReadToEndAsync());
        var record = Assert.Single(gate.Records);
        Assert.True(record.Status is 400 or 407, $"{name}: {record}");
        Assert.Empty(gate.Closes);
    }

    [Fact]
    public async Task A_negotiation_that_stops_halfway_is_closed_by_the_header_timeout_and_recorded()
    {
        var (proxy, gate, engines) = Start(PolicyJson(80), configure: o => o.HeaderTimeoutMs = 200);
        await using var _p = proxy;
        using var _e = engines;

        using var client = await RawClient.ConnectAsync(proxy.EndPointOf(1));
        await client.SendAsync([5, 2, 0]);

        Assert.Equal([5, 0xFF], await client.ReadToEndAsync(timeoutMs: 10_000));
        Assert.Equal((408, "header_timeout"), gate.Records.Select(r => (r.Status, r.Reason)).Single());
    }

    [Fact]
    public async Task The_SNI_check_runs_after_the_success_reply_and_a_mismatch_closes_before_anything_is_dialed()
    {
        var dialed = 0;
        await using var origin = new TcpOrigin(_ =>
        {
            Interlocked.Increment(ref dialed);
            return Task.CompletedTask;
        });
        var (proxy, gate, engines) = Start(PolicyJson(origin.Port).Replace("\"requireSniMatch\": false", "\"requireSniMatch\": true", StringComparison.Ordinal));
        await using var _p = proxy;
        using var _e = engines;

        var (reply, bound, client) = await SocksClient.ConnectAsync(proxy.EndPointOf(1), "allowed.test", origin.Port, "bot", PolicyFixture.Token);
        using var _c = client;
        Assert.Equal(0, reply);
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, origin.Port), bound);
        await client.SendAsync(await ClientHellos.CaptureAsync("evil.test"));

        Assert.Empty(await client.ReadToEndAsync());
        Assert.Equal(("BLOCK", "sni_mismatch"), gate.Records.Select(r => (r.Decision, r.Reason)).Single());
        Assert.Equal(0, Volatile.Read(ref dialed));
    }

    [Fact]
    public async Task The_tunnel_budget_counts_SOCKS_and_HTTP_tunnels_together()
    {
        await using var echo = TcpOrigin.Echo();
        var (proxy, gate, engines) = Start(PolicyJson(echo.Port), maxTunnels: 1);
        await using var _p = proxy;
        using var _e = engines;

        var (first, _, held) = await SocksClient.ConnectAsync(proxy.EndPointOf(1), "127.0.0.1", echo.Port, "bot", PolicyFixture.Token);
        using var _h = held;
        var (second, _, refused) = await SocksClient.ConnectAsync(proxy.EndPointOf(1), "127.0.0.1", echo.Port, "bot", PolicyFixture.Token);
        using var _r = refused;

        Assert.Equal((0, 2), (first, second));
        Assert.Equal(["ALLOW", "RATE_LIMITED"], gate.Records.Select(r => r.Decision));
    }

    [Fact]
    public async Task A_reload_that_denies_the_destination_closes_the_SOCKS_tunnel()
    {
        await using var echo = TcpOrigin.Echo();
        var (proxy, gate, engines) = Start(PolicyJson(echo.Port));
        await using var _p = proxy;
        using var _e = engines;
        var (reply, _, client) = await SocksClient.ConnectAsync(proxy.EndPointOf(1), "allowed.test", echo.Port, "bot", PolicyFixture.Token);
        using var _c = client;
        Assert.Equal(0, reply);

        engines.Reload(PolicyJson(echo.Port).Replace("\"allowed.test\", ", string.Empty, StringComparison.Ordinal));

        Assert.Empty(await client.ReadToEndAsync(timeoutMs: 10_000));
        await gate.FirstClose.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("policy_revoked", Assert.Single(gate.Closes).Reason);
    }
}
