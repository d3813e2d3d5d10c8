using System.Net;
using System.Net.Sockets;
using System.Text;
using ChronoGuard.Audit;
using ChronoGuard.Policy;
using ChronoGuard.Proxy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Transparent;

/// <summary>
/// SPEC §10 transparent capture, in process: the listener takes the name from the client's first bytes
/// (SNI, Host) or from what the DNS guard answered for the address, believes it only for an address it
/// resolves to, decides it as the listener's agent with the same gate, and refuses in words the client
/// understands (an HTTP 403, a TLS alert, a reset). Every decision is recorded with identity transparent.
/// </summary>
public sealed class TransparentListenerTests
{
    private static readonly byte[] AccessDenied = [21, 3, 3, 0, 2, 2, 49];

    private static string Policy(int port, string extra = "") => $$"""
        {
          "version": 1,
          "network": { "allowPrivateDestinations": false, "allowedCidrs": ["127.0.0.0/8"], "allowedPorts": [{{port}}], "requireSniMatch": true },
          "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
          "policies": [ { "name": "p", "allowedDomains": ["allowed.test", "*.allowed.test"], "blockedDomains": ["evil.test"] {{extra}} } ]
        }
        """;

    [Fact]
    public async Task A_TLS_client_is_named_by_its_SNI_bound_by_the_DNS_guards_answer_and_relayed_to_its_destination()
    {
        await using var origin = TcpOrigin.Echo();
        await using var rig = TransparentRig.Start(Policy(origin.Port));
        var destination = new IPEndPoint(IPAddress.Loopback, origin.Port);
        rig.Answered("allowed.test", IPAddress.Loopback);
        var hello = await ClientHellos.CaptureAsync("allowed.test");

        using var client = await rig.ConnectAsync(destination);
        await client.SendAsync(hello);
        Assert.Equal(hello, await client.ReadExactlyAsync(hello.Length));

        Assert.Equal((200, "ALLOW"), (Single(rig).Record.Status, Single(rig).Record.Decision));
        Assert.Equal(("allowed.test", origin.Port, "127.0.0.1"), Assert.Single(rig.Gate.Destinations));
        Assert.Equal(("TRANSPARENT", string.Empty), Assert.Single(rig.Gate.Requests));
        Assert.Equal(AuditIdentity.Transparent, Assert.Single(rig.Gate.Identities));
        Assert.Equal("bot", Assert.Single(rig.Gate.Agents).Agent);
    }

    [Fact]
    public async Task A_name_the_DNS_guard_did_not_answer_is_bound_by_a_fresh_lookup()
    {
        await using var origin = TcpOrigin.Echo();
        var resolver = new MapResolver();
        resolver.Set("api.allowed.test", IPAddress.Parse("127.0.0.9"), IPAddress.Loopback);
        await using var rig = TransparentRig.Start(Policy(origin.Port), resolver);
        var hello = await ClientHellos.CaptureAsync("api.allowed.test");

        using var client = await rig.ConnectAsync(new IPEndPoint(IPAddress.Loopback, origin.Port));
        await client.SendAsync(hello);

        Assert.Equal(hello, await client.ReadExactlyAsync(hello.Length));
        Assert.Equal("ALLOW", Single(rig).Record.Decision);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task An_allowed_SNI_sent_to_another_address_is_refused_with_a_TLS_alert_and_nothing_is_dialed(bool answeredElsewhere)
    {
        var reached = 0;
        await using var origin = new TcpOrigin(_ =>
        {
            Interlocked.Increment(ref reached);
            return Task.CompletedTask;
        });
        var resolver = new MapResolver();
        resolver.Set("allowed.test", IPAddress.Parse("127.0.0.7"));
        await using var rig = TransparentRig.Start(Policy(origin.Port), resolver);
        if (answeredElsewhere)
        {
            // The guard answered the name with another address (and this one for another name).
            rig.Answered("allowed.test", IPAddress.Parse("127.0.0.7"));
            rig.Answered("other.allowed.test", IPAddress.Loopback);
        }

        var hello = await ClientHellos.CaptureAsync("allowed.test");
        using var client = await rig.ConnectAsync(new IPEndPoint(IPAddress.Loopback, origin.Port));
        await client.SendAsync(hello);

        Assert.Equal(AccessDenied, await client.ReadToEndAsync());
        var (record, destination) = Single(rig);
        Assert.Equal((403, "BLOCK", ProxyReasons.NameAddressMismatch), (record.Status, record.Decision, record.Reason));
        Assert.Equal(("allowed.test", "127.0.0.1"), (destination.Host, destination.Dialed));
        Assert.Equal(0, Volatile.Read(ref reached));
    }

    [Fact]
    public async Task A_name_the_policy_refuses_gets_the_policys_refusal_before_any_binding()
    {
        await using var origin = TcpOrigin.Echo();
        await using var rig = TransparentRig.Start(Policy(origin.Port));
        rig.Answered("evil.test", IPAddress.Loopback);
        var hello = await ClientHellos.CaptureAsync("evil.test");

        // Captured before the connect: a client silent for FirstBytesMs is decided as one that waits for the server.
        using var client = await rig.ConnectAsync(new IPEndPoint(IPAddress.Loopback, origin.Port));
        await client.SendAsync(hello);

        Assert.Equal(AccessDenied, await client.ReadToEndAsync());
        Assert.Equal((403, "BLOCK", "domain_blocked"), Verdict(rig));
    }

    [Fact]
    public async Task Plain_HTTP_is_forwarded_to_the_original_destination_by_its_Host_with_keep_alive_and_refused_with_an_HTTP_403()
    {
        await using var origin = await KestrelOrigin.StartAsync();
        await using var rig = TransparentRig.Start(Policy(origin.Port));
        rig.Answered("allowed.test", IPAddress.Loopback);
        rig.Answered("evil.test", IPAddress.Loopback);

        using var client = await rig.ConnectAsync(new IPEndPoint(IPAddress.Loopback, origin.Port));
        await client.SendAsync("POST /echo HTTP/1.1\r\nHost: allowed.test\r\nContent-Length: 5\r\n\r\nhello");
        Assert.Equal(200, (await client.ReadHeadAsync()).Status);
        Assert.Equal("hello", Encoding.ASCII.GetString(await client.ReadExactlyAsync(5)));
        await client.SendAsync($"POST /echo HTTP/1.1\r\nHost: allowed.test:{origin.Port}\r\nContent-Length: 3\r\n\r\nabc");
        Assert.Equal(200, (await client.ReadHeadAsync()).Status);
        Assert.Equal("abc", Encoding.ASCII.GetString(await client.ReadExactlyAsync(3)));
        await client.SendAsync("GET /hello HTTP/1.1\r\nHost: evil.test\r\n\r\n");
        var refused = await client.ReadHeadAsync();

        Assert.Equal(403, refused.Status);
        Assert.Equal("domain_blocked", refused["X-ChronoGuard-Reason"]);
        Assert.Equal([("POST", "/echo"), ("POST", "/echo"), ("GET", "/hello")], rig.Gate.Requests);
        Assert.All(rig.Gate.Identities, i => Assert.Equal(AuditIdentity.Transparent, i));
        Assert.All(rig.Gate.Destinations, d => Assert.Equal(origin.Port, d.Port));
        Assert.Single(origin.ConnectionIds);
    }

    [Theory]
    [InlineData("GET /hello HTTP/1.1\r\nHost: allowed.test:1\r\n\r\n", "host_mismatch")]
    [InlineData("CONNECT allowed.test:443 HTTP/1.1\r\nHost: allowed.test:443\r\n\r\n", "not_origin_form")]
    [InlineData("GET http://allowed.test/hello HTTP/1.1\r\nHost: allowed.test\r\n\r\n", "not_origin_form")]
    [InlineData("GET /hello HTTP/1.1\r\n\r\n", "missing_host")]
    public async Task An_HTTP_request_that_names_no_place_or_another_port_is_refused_400(string request, string reason)
    {
        await using var origin = await KestrelOrigin.StartAsync();
        await using var rig = TransparentRig.Start(Policy(origin.Port));
        rig.Answered("allowed.test", IPAddress.Loopback);

        using var client = await rig.ConnectAsync(new IPEndPoint(IPAddress.Loopback, origin.Port));
        await client.SendAsync(request);
        var response = await client.ReadHeadAsync();

        Assert.Equal(400, response.Status);
        Assert.Equal(reason, response["X-ChronoGuard-Reason"]);
        Assert.Empty(origin.ConnectionIds);
    }

    [Fact]
    public async Task A_path_rule_judges_plain_HTTP_on_a_redirected_connection_as_on_the_proxy_port()
    {
        await using var origin = await KestrelOrigin.StartAsync();
        var rule = """, "rules": [ { "name": "no-secret", "priority": 1, "action": "deny", "when": [ { "field": "path", "op": "starts_with", "value": "/secret" } ] } ]""";
        await using var rig = TransparentRig.Start(Policy(origin.Port, rule));
        rig.Answered("allowed.test", IPAddress.Loopback);

        foreach (var path in (string[])["/secret", "/%73ecret", "//secret", "/x/../secret"])
        {
            using var client = await rig.ConnectAsync(new IPEndPoint(IPAddress.Loopback, origin.Port));
            await client.SendAsync($"GET {path} HTTP/1.1\r\nHost: allowed.test\r\n\r\n");
            Assert.Equal(403, (await client.ReadHeadAsync()).Status);
        }

        Assert.All(rig.Gate.Records, r => Assert.Equal("rule_deny", r.Reason));
        Assert.Empty(origin.ConnectionIds);
    }

    /// <summary>
    /// What an HTTP server would parse as a request is judged as HTTP, path rules included, and never
    /// relayed as another protocol's bytes: servers skip blank lines before the request line (RFC 9112
    /// §2.2; nginx any number) and some take any token as a method (Go serves <c>get</c>).
    /// </summary>
    [Theory]
    [InlineData("\r\nGET /secret HTTP/1.1\r\nHost: allowed.test\r\n\r\n")]
    [InlineData("\nGET /secret HTTP/1.1\r\nHost: allowed.test\r\n\r\n")]
    [InlineData("\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET /secret HTTP/1.1\r\nHost: allowed.test\r\n\r\n")]
    [InlineData(" GET /secret HTTP/1.1\r\nHost: allowed.test\r\n\r\n")]
    [InlineData("get /secret HTTP/1.1\r\nHost: allowed.test\r\n\r\n")]
    [InlineData("M-SEARCH /secret HTTP/1.1\r\nHost: allowed.test\r\n\r\n")]
    [InlineData("Get /secret HTTP/1.0\r\nHost: allowed.test\r\n\r\n")]
    public async Task What_an_HTTP_server_would_read_as_a_request_is_judged_as_HTTP_not_relayed_as_another_protocol(string request)
    {
        var received = 0;
        await using var origin = new TcpOrigin(async s =>
        {
            var buffer = new byte[4096];
            int n;
            while ((n = await s.ReceiveAsync(buffer)) > 0)
            {
                Interlocked.Add(ref received, n);
            }
        });
        var rule = """, "rules": [ { "name": "no-secret", "priority": 1, "action": "deny", "when": [ { "field": "path", "op": "starts_with", "value": "/secret" } ] } ]""";
        await using var rig = TransparentRig.Start(Policy(origin.Port, rule));
        rig.Answered("allowed.test", IPAddress.Loopback);

        using var client = await rig.ConnectAsync(new IPEndPoint(IPAddress.Loopback, origin.Port));
        await client.SendAsync(request);

        var refused = await client.ReadHeadAsync();
        Assert.True(refused.Status is 400 or 403, refused.StatusLine);
        Assert.NotEqual("ALLOW", Assert.Single(rig.Gate.Records).Decision);
        Assert.Equal(0, Volatile.Read(ref received));
    }

    [Theory]
    [InlineData("get key\r\n")]
    [InlineData("set key 0 0 5\r\nvalue\r\n")]
    [InlineData("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n")]
    public async Task A_text_protocol_that_no_HTTP_server_would_read_as_a_request_is_relayed_by_its_name(string first)
    {
        await using var origin = TcpOrigin.Echo();
        await using var rig = TransparentRig.Start(Policy(origin.Port));
        rig.Answered("allowed.test", IPAddress.Loopback);

        using var client = await rig.ConnectAsync(new IPEndPoint(IPAddress.Loopback, origin.Port));
        await client.SendAsync(first);

        Assert.Equal(first, Encoding.ASCII.GetString(await client.ReadExactlyAsync(first.Length)));
        Assert.Equal(("allowed.test", "ALLOW"), (Assert.Single(rig.Gate.Destinations).Host, Single(rig).Record.Decision));
    }

    [Fact]
    public async Task A_protocol_without_a_name_takes_the_name_the_DNS_guard_answered_on_a_port_scoped_pattern()
    {
        await using var origin = TcpOrigin.Echo();
        var policy = Policy(origin.Port).Replace("\"allowedDomains\": [", $"\"allowedDomains\": [\"git.test:{origin.Port}\", ", StringComparison.Ordinal)
            .Replace($"\"allowedPorts\": [{origin.Port}]", "\"allowedPorts\": [443]", StringComparison.Ordinal);
        await using var rig = TransparentRig.Start(policy);
        rig.Answered("git.test", IPAddress.Loopback);

        using var client = await rig.ConnectAsync(new IPEndPoint(IPAddress.Loopback, origin.Port));
        var banner = Encoding.ASCII.GetBytes("SSH-2.0-OpenSSH_9.2\r\n");
        await client.SendAsync(banner);

        Assert.Equal(banner, await client.ReadExactlyAsync(banner.Length));
        Assert.Equal(("git.test", origin.Port, "127.0.0.1"), Assert.Single(rig.Gate.Destinations));
        Assert.Equal("ALLOW", Single(rig).Record.Decision);
    }

    [Fact]
    public async Task A_silent_client_of_a_protocol_where_the_server_speaks_first_is_decided_after_the_first_bytes_wait()
    {
        var greeting = Encoding.ASCII.GetBytes("220 smtp.allowed.test ESMTP\r\n");
        await using var origin = new TcpOrigin(async s =>
        {
            await s.SendAsync(greeting);
            await s.ReceiveAsync(new byte[1]);
        });
        await using var rig = TransparentRig.Start(Policy(origin.Port), firstBytesMs: 50);
        rig.Answered("smtp.allowed.test", IPAddress.Loopback);

        using var client = await rig.ConnectAsync(new IPEndPoint(IPAddress.Loopback, origin.Port));

        Assert.Equal(greeting, await client.ReadExactlyAsync(greeting.Length));
        Assert.Equal(("smtp.allowed.test", origin.Port, "127.0.0.1"), Assert.Single(rig.Gate.Destinations));
    }

    [Fact]
    public async Task An_address_no_name_was_answered_for_is_its_IP_literal_refused_as_unresolved_and_reset_unless_the_policy_names_it_or_its_block()
    {
        await using var origin = TcpOrigin.Echo();
        await using (var rig = TransparentRig.Start(Policy(origin.Port)))
        {
            using var client = await rig.ConnectAsync(new IPEndPoint(IPAddress.Loopback, origin.Port));
            await client.SendAsync("SSH-2.0-x\r\n");

            await AssertResetOrClosedAsync(client);
            Assert.Equal((403, "BLOCK", ProxyReasons.UnresolvedDestination), Verdict(rig));
            Assert.Equal(("127.0.0.1", origin.Port, "127.0.0.1"), Assert.Single(rig.Gate.Destinations));
        }

        var named = Policy(origin.Port).Replace("\"allowedDomains\": [", "\"allowedDomains\": [\"127.0.0.1\", ", StringComparison.Ordinal);
        await using (var rig = TransparentRig.Start(named))
        {
            using var client = await rig.ConnectAsync(new IPEndPoint(IPAddress.Loopback, origin.Port));
            await client.SendAsync("SSH-2.0-x\r\n");
            Assert.Equal("SSH-2.0-x\r\n"u8.ToArray(), await client.ReadExactlyAsync(11));
            Assert.Equal("ALLOW", Single(rig).Record.Decision);
        }

        // An address block names it too, here only on the origin's port.
        var block = Policy(origin.Port).Replace("\"allowedDomains\": [", $"\"allowedDomains\": [\"127.0.0.0/24:{origin.Port}\", ", StringComparison.Ordinal);
        await using (var rig = TransparentRig.Start(block))
        {
            using var client = await rig.ConnectAsync(new IPEndPoint(IPAddress.Loopback, origin.Port));
            await client.SendAsync("SSH-2.0-x\r\n");
            Assert.Equal("SSH-2.0-x\r\n"u8.ToArray(), await client.ReadExactlyAsync(11));
            Assert.Equal("ALLOW", Single(rig).Record.Decision);
        }
    }

    [Fact]
    public async Task A_connection_to_the_sidecars_own_listeners_or_one_not_redirected_at_all_is_refused_as_a_loop()
    {
        await using var rig = TransparentRig.Start(Policy(443));
        rig.Answered("allowed.test", IPAddress.Loopback);
        foreach (var destination in new IPEndPoint?[] { rig.Listener, rig.Proxy.EndPoint, null })
        {
            try
            {
                // The refusal does not wait for the client's bytes: the reset may beat the connect's completion.
                using var client = await rig.ConnectAsync(destination);
                await client.SendAsync("GET / HTTP/1.1\r\nHost: allowed.test\r\n\r\n");
                await AssertResetOrClosedAsync(client);
            }
            catch (SocketException ex) when (ex.SocketErrorCode is SocketError.ConnectionReset or SocketError.Shutdown)
            {
            }
        }

        await rig.Gate.WaitForClosesAsync(3);
        Assert.Equal(3, rig.Gate.Records.Count);
        Assert.All(rig.Gate.Records, r => Assert.Equal((403, "BLOCK", ProxyReasons.OwnListener), (r.Status, r.Decision, r.Reason)));
        Assert.All(rig.Gate.Identities, i => Assert.Equal(AuditIdentity.Transparent, i));
    }

    [Fact]
    public async Task A_ClientHello_that_never_ends_is_refused_within_the_header_timeout()
    {
        await using var origin = TcpOrigin.Echo();
        // The half ClientHello must arrive before the header clock runs out: two seconds, not a few
        // hundred milliseconds, so a thread pool held back by a busy machine cannot make it late.
        await using var rig = TransparentRig.Start(Policy(origin.Port), configure: o => o.HeaderTimeoutMs = 2000);
        var hello = await ClientHellos.CaptureAsync("allowed.test");

        using var client = await rig.ConnectAsync(new IPEndPoint(IPAddress.Loopback, origin.Port));
        await client.SendAsync(hello[..(hello.Length / 2)]);

        Assert.Equal(AccessDenied, await client.ReadToEndAsync());
        Assert.Equal((403, "BLOCK", ProxyReasons.SniTimeout), Verdict(rig));
    }

    [Theory]
    [InlineData("GE")]
    [InlineData("POS")]
    public async Task A_client_that_stalls_in_its_first_word_is_refused_408_not_relayed_as_another_protocol(string partial)
    {
        var reached = 0;
        await using var origin = new TcpOrigin(_ =>
        {
            Interlocked.Increment(ref reached);
            return Task.CompletedTask;
        });
        await using var rig = TransparentRig.Start(Policy(origin.Port), configure: o => o.HeaderTimeoutMs = 300);
        rig.Answered("allowed.test", IPAddress.Loopback);

        using var client = await rig.ConnectAsync(new IPEndPoint(IPAddress.Loopback, origin.Port));
        await client.SendAsync(partial);

        await AssertResetOrClosedAsync(client);
        var refusal = Assert.Single(rig.Gate.Records);
        Assert.Equal((408, ProxyReasons.HeaderTimeout), (refusal.Status, refusal.Reason));
        Assert.Equal(0, Volatile.Read(ref reached));
    }

    [Fact]
    public async Task A_reload_that_drops_the_name_closes_a_redirected_tunnel()
    {
        await using var origin = TcpOrigin.Echo();
        await using var rig = TransparentRig.Start(Policy(origin.Port));
        rig.Answered("allowed.test", IPAddress.Loopback);
        var hello = await ClientHellos.CaptureAsync("allowed.test");
        using var client = await rig.ConnectAsync(new IPEndPoint(IPAddress.Loopback, origin.Port));
        await client.SendAsync(hello);
        Assert.Equal(hello, await client.ReadExactlyAsync(hello.Length));

        rig.Engines.Reload(Policy(origin.Port).Replace("\"allowed.test\", ", string.Empty, StringComparison.Ordinal));

        await rig.Gate.WaitForClosesAsync(1);
        Assert.Equal(Reasons.PolicyRevoked, Assert.Single(rig.Gate.Closes).Reason);
    }

    private static ((int Status, string Decision, string Reason, long Seq) Record, (string Host, int Port, string Dialed) Destination) Single(TransparentRig rig)
    {
        var r = Assert.Single(rig.Gate.Records);
        return ((r.Status, r.Decision, r.Reason, r.Seq), Assert.Single(rig.Gate.Destinations));
    }

    private static (int Status, string Decision, string Reason) Verdict(TransparentRig rig)
    {
        var r = Single(rig).Record;
        return (r.Status, r.Decision, r.Reason);
    }

    /// <summary>A reset, or a close with nothing sent: the client learns only that it got nowhere.</summary>
    private static async Task AssertResetOrClosedAsync(RawClient client)
    {
        try
        {
            Assert.Empty(await client.ReadToEndAsync());
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.ConnectionReset)
        {
        }
    }
}
