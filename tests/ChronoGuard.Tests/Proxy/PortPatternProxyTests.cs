using System.Net;
using System.Text;
using ChronoGuard.Policy;
using ChronoGuard.Proxy;
using ChronoGuard.Tests.Policy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Proxy;

/// <summary>
/// Port-scoped patterns (SPEC §8) through the real proxy: CONNECT and plain HTTP to loopback origins
/// on ephemeral ports that <c>allowedPorts</c> never lists, named through the test resolver.
/// </summary>
public sealed class PortPatternProxyTests
{
    private static string PolicyJson(string allowed, string allowedPorts = "443") => $$"""
        {
          "version": 1,
          "network": { "allowedCidrs": ["127.0.0.0/8"], "allowedPorts": [{{allowedPorts}}], "requireSniMatch": false },
          "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
          "policies": [ { "name": "p", "allowedDomains": [{{allowed}}] } ]
        }
        """;

    private static PolicyEngine Engine(string json, TempDir dir)
    {
        var path = dir.File("policy.json");
        File.WriteAllText(path, json.Replace("$TOKEN", PolicyFixture.TokenSha, StringComparison.Ordinal));
        var engine = new PolicyEngine(path, 512, TimeProvider.System);
        Assert.True(engine.Reload().Ok);
        return engine;
    }

    private static MapResolver Loopback(params string[] names)
    {
        var resolver = new MapResolver();
        foreach (var name in names)
        {
            resolver[name] = IPAddress.Loopback;
        }

        return resolver;
    }

    private static async Task<(RawResponse Head, RawClient Client)> ConnectAsync(TestProxy proxy, string host, int port)
    {
        var client = await RawClient.ConnectAsync(proxy.EndPoint);
        await client.SendAsync($"CONNECT {host}:{port} HTTP/1.1\r\nProxy-Authorization: {Encoding.ASCII.GetString(PolicyFixture.Basic("bot"))}\r\n\r\n");
        return (await client.ReadHeadAsync(), client);
    }

    private static async Task AssertTunnelAsync(TestProxy proxy, string host, int port)
    {
        var (head, client) = await ConnectAsync(proxy, host, port);
        using var _ = client;
        Assert.Equal(200, head.Status);
        await client.SendAsync("through");
        Assert.Equal("through", Encoding.ASCII.GetString(await client.ReadExactlyAsync(7)));
    }

    private static async Task AssertPortRefusedAsync(TestProxy proxy, RecordingGate gate, string host, int port)
    {
        var (head, client) = await ConnectAsync(proxy, host, port);
        using var _ = client;
        Assert.Equal(403, head.Status);
        Assert.Equal("BLOCK", head["X-ChronoGuard-Decision"]);
        Assert.Contains(gate.Records, r => r is { Status: 403, Decision: "BLOCK", Reason: Reasons.PortNotAllowed });
    }

    [Fact]
    public async Task A_port_scoped_pattern_opens_its_port_and_no_other_on_the_same_host()
    {
        await using var ssh = TcpOrigin.Echo();
        await using var other = TcpOrigin.Echo();
        using var dir = new TempDir();
        var gate = new RecordingGate(new PolicyGate(Engine(PolicyJson($"\"git.test:{ssh.Port}\""), dir), TimeProvider.System));
        await using var proxy = TestProxy.Start(gate: gate, resolver: Loopback("git.test"));

        await AssertTunnelAsync(proxy, "git.test", ssh.Port);
        await AssertPortRefusedAsync(proxy, gate, "git.test", other.Port);
    }

    [Fact]
    public async Task A_reload_that_takes_the_port_away_closes_the_open_tunnel()
    {
        await using var ssh = TcpOrigin.Echo();
        using var dir = new TempDir();
        var engine = Engine(PolicyJson($"\"git.test:{ssh.Port}\""), dir);
        var gate = new RecordingGate(new PolicyGate(engine, TimeProvider.System));
        await using var proxy = TestProxy.Start(gate: gate, resolver: Loopback("git.test"));
        var (head, tunnel) = await ConnectAsync(proxy, "git.test", ssh.Port);
        using var _ = tunnel;
        Assert.Equal(200, head.Status);

        // The name stays allowed, without its port: the tunnel's port is no longer admitted.
        File.WriteAllText(dir.File("policy.json"), PolicyJson("\"git.test\"").Replace("$TOKEN", PolicyFixture.TokenSha, StringComparison.Ordinal));
        Assert.True(engine.Reload().Ok);

        Assert.Empty(await tunnel.ReadToEndAsync(timeoutMs: 10_000));
        await gate.FirstClose.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("policy_revoked", Assert.Single(gate.Closes).Reason);
    }

    [Theory]
    [InlineData(0, 5, true)]    // the origin's port is the range's low end
    [InlineData(-5, 0, true)]   // … its high end
    [InlineData(1, 5, false)]   // … one below the low end
    [InlineData(-5, -1, false)] // … one above the high end
    public async Task A_range_admits_its_ends_and_nothing_beyond(int low, int high, bool admitted)
    {
        await using var echo = TcpOrigin.Echo();
        using var dir = new TempDir();
        var gate = new RecordingGate(new PolicyGate(Engine(PolicyJson($"\"range.test:{echo.Port + low}-{echo.Port + high}\""), dir), TimeProvider.System));
        await using var proxy = TestProxy.Start(gate: gate, resolver: Loopback("range.test"));

        if (admitted)
        {
            await AssertTunnelAsync(proxy, "range.test", echo.Port);
        }
        else
        {
            await AssertPortRefusedAsync(proxy, gate, "range.test", echo.Port);
        }
    }

    [Fact]
    public async Task A_wildcard_with_a_port_admits_subdomains_on_that_port_and_not_the_bare_name()
    {
        await using var echo = TcpOrigin.Echo();
        using var dir = new TempDir();
        var gate = new RecordingGate(new PolicyGate(Engine(PolicyJson($"\"*.wild.test:{echo.Port - 1}-{echo.Port}\""), dir), TimeProvider.System));
        await using var proxy = TestProxy.Start(gate: gate, resolver: Loopback("a.wild.test", "a.b.wild.test", "wild.test"));

        await AssertTunnelAsync(proxy, "a.wild.test", echo.Port);
        await AssertTunnelAsync(proxy, "A.B.Wild.Test", echo.Port);
        await AssertPortRefusedAsync(proxy, gate, "wild.test", echo.Port);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_pattern_without_a_port_follows_allowedPorts_even_beside_another_name_scoped_to_that_port(bool listed)
    {
        await using var echo = TcpOrigin.Echo();
        using var dir = new TempDir();
        var allowed = $"\"plain.test\", \"ssh.test:{echo.Port}\", \"*.plain.test:{echo.Port}\"";
        var gate = new RecordingGate(new PolicyGate(Engine(PolicyJson(allowed, listed ? $"443, {echo.Port}" : "443"), dir), TimeProvider.System));
        await using var proxy = TestProxy.Start(gate: gate, resolver: Loopback("plain.test"));

        if (listed)
        {
            await AssertTunnelAsync(proxy, "plain.test", echo.Port);
        }
        else
        {
            await AssertPortRefusedAsync(proxy, gate, "plain.test", echo.Port);
        }
    }

    [Fact]
    public async Task Plain_HTTP_is_forwarded_to_a_port_scoped_pattern_and_refused_on_another_port()
    {
        await using var origin = await KestrelOrigin.StartAsync();
        await using var elsewhere = await KestrelOrigin.StartAsync();
        using var dir = new TempDir();
        var gate = new RecordingGate(new PolicyGate(Engine(PolicyJson($"\"web.test:{origin.Port}\""), dir), TimeProvider.System));
        await using var proxy = TestProxy.Start(gate: gate, resolver: Loopback("web.test"));
        using var handler = new SocketsHttpHandler { Proxy = new WebProxy(proxy.Uri) { Credentials = new NetworkCredential("bot", PolicyFixture.Token) } };
        using var http = new HttpClient(handler);

        Assert.Equal("hello from origin", await http.GetStringAsync(new Uri($"http://web.test:{origin.Port}/hello")));

        using var refused = await http.GetAsync(new Uri($"http://web.test:{elsewhere.Port}/hello"));
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Equal("BLOCK", refused.Headers.GetValues("X-ChronoGuard-Decision").Single());
        Assert.Contains(gate.Records, r => r.Reason == Reasons.PortNotAllowed);
        Assert.Empty(elsewhere.ConnectionIds);
    }
}
