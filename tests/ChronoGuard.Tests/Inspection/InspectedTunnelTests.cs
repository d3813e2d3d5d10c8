using System.Net;
using ChronoGuard.Policy;
using ChronoGuard.Proxy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Inspection;

/// <summary>
/// The inspected front end (SPEC §7) through the real proxy, with real TLS on both sides: a client
/// that trusts ChronoGuard's CA, a loopback origin with a certificate of the test's own CA (which the
/// proxy trusts as its upstream trust file), and a gate that asks to inspect <see cref="InspectionRig.Host"/>.
/// </summary>
public sealed class InspectedTunnelTests
{
    private static (TestProxy Proxy, RecordingGate Records, InspectingGate Gate) Start(InspectionRig rig, string? denyPathPrefix = null, params string[] inspect)
    {
        var records = new RecordingGate();
        var gate = new InspectingGate(records, inspect.Length == 0 ? [InspectionRig.Host] : inspect) { DenyPathPrefix = denyPathPrefix };
        var proxy = TestProxy.Start(gate: gate, resolver: rig.Resolver, inspection: rig.Inspection);
        return (proxy, records, gate);
    }

    [Fact]
    public async Task Each_request_inside_is_forwarded_over_TLS_to_the_tunnel_host_and_recorded_with_its_own_method_and_path()
    {
        await using var rig = await InspectionRig.StartAsync();
        var (proxy, records, gate) = Start(rig);
        await using var _ = proxy;
        using var client = rig.Client(proxy);

        using var response = await client.GetAsync(rig.Url("/echo/a?x=1"));
        var body = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        // The client trusted only ChronoGuard's CA, so the proxy terminated TLS; the origin saw the
        // request with the hop's Via.
        Assert.StartsWith("GET /echo/a?x=1\n", body, StringComparison.Ordinal);
        Assert.Contains("Via: 1.1 chronoguard", body, StringComparison.Ordinal);
        Assert.Equal([FrontEnd.Connect, FrontEnd.Inspected], gate.FrontEnds);
        Assert.Equal([("CONNECT", ""), ("GET", "/echo/a?x=1")], records.Requests);
        Assert.All(records.Records, r => Assert.Equal(200, r.Status));
    }

    [Fact]
    public async Task A_host_the_CAs_name_constraints_leave_out_is_refused_503_and_no_leaf_is_minted()
    {
        await using var rig = await InspectionRig.StartAsync("other.test");
        var (proxy, records, _) = Start(rig);
        await using var __ = proxy;

        using var client = await RawClient.ConnectAsync(proxy.EndPoint);
        await client.SendAsync($"CONNECT {InspectionRig.Host}:{rig.Port} HTTP/1.1\r\nHost: {InspectionRig.Host}:{rig.Port}\r\n\r\n");
        var response = await client.ReadHeadAsync();

        Assert.Equal(503, response.Status);
        Assert.Equal(ProxyReasons.InspectionNameNotPermitted, response["X-ChronoGuard-Reason"]);
        Assert.Equal(0, rig.Inspection.Leaves.Minted);
        Assert.Equal((503, ProxyReasons.InspectionNameNotPermitted), (Assert.Single(records.Records).Status, records.Records.Single().Reason));
    }

    [Fact]
    public async Task The_origin_receives_the_normalised_path_that_was_decided_and_recorded()
    {
        await using var rig = await InspectionRig.StartAsync();
        var (proxy, records, _) = Start(rig, denyPathPrefix: "/admin");
        await using var p = proxy;
        await using var client = await TlsTunnelClient.OpenAsync(proxy.EndPoint, $"{InspectionRig.Host}:{rig.Port}", InspectionRig.Host, rig.Ca.Certificate);

        await client.SendAsync($"GET /echo/%7Ea/./b/../c?x=1 HTTP/1.1\r\nHost: {InspectionRig.Host}:{rig.Port}\r\n\r\n");
        var (head, body) = await client.ReadResponseAsync();
        await client.SendAsync($"GET /public/../admin/x HTTP/1.1\r\nHost: {InspectionRig.Host}:{rig.Port}\r\n\r\n");
        var (refused, _) = await client.ReadResponseAsync();

        Assert.Equal(200, head.Status);
        Assert.StartsWith("GET /echo/~a/c?x=1\n", body, StringComparison.Ordinal);
        // A path that only reaches /admin after normalisation is judged as /admin.
        Assert.Equal(403, refused.Status);
        Assert.Equal(["GET /echo/~a/c?x=1"], rig.Origin.Seen);
        Assert.Equal([("CONNECT", ""), ("GET", "/echo/~a/c?x=1"), ("GET", "/admin/x")], records.Requests);
    }

    [Fact]
    public async Task Path_rules_allow_and_refuse_inside_one_kept_alive_tunnel()
    {
        await using var rig = await InspectionRig.StartAsync();
        var (proxy, records, gate) = Start(rig, denyPathPrefix: "/admin");
        await using var _ = proxy;
        using var client = rig.Client(proxy);

        using var first = await client.GetAsync(rig.Url("/repos/a"));
        using var refused = await client.GetAsync(rig.Url("/admin/users"));
        var refusal = await refused.Content.ReadAsStringAsync();
        using var again = await client.GetAsync(rig.Url("/repos/b"));

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Equal("BLOCK", refused.Headers.GetValues("X-ChronoGuard-Decision").Single());
        Assert.Equal(Reasons.RuleDeny, refused.Headers.GetValues("X-ChronoGuard-Reason").Single());
        Assert.Contains("BLOCK " + Reasons.RuleDeny, refusal, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        // One tunnel carried all three: the refusal kept the inner connection, and nothing refused reached the origin.
        Assert.Equal(1, gate.FrontEnds.Count(f => f == FrontEnd.Connect));
        Assert.Equal(["GET /repos/a", "GET /repos/b"], rig.Origin.Seen);
        Assert.Contains((403, "BLOCK", Reasons.RuleDeny), records.Records.Select(r => (r.Status, r.Decision, r.Reason)));
        Assert.Equal(("GET", "/admin/users"), records.Requests.ElementAt(2));
    }

    [Fact]
    public async Task A_ClientHello_sent_before_the_200_is_not_lost()
    {
        await using var rig = await InspectionRig.StartAsync();
        var (proxy, _, _) = Start(rig);
        await using var p = proxy;

        await using var client = await TlsTunnelClient.OpenAsync(proxy.EndPoint, $"{InspectionRig.Host}:{rig.Port}", InspectionRig.Host, rig.Ca.Certificate, early: true);
        await client.SendAsync($"GET /early HTTP/1.1\r\nHost: {InspectionRig.Host}:{rig.Port}\r\n\r\n");
        var (head, body) = await client.ReadResponseAsync();

        Assert.Equal(200, head.Status);
        Assert.StartsWith("GET /early\n", body, StringComparison.Ordinal);
        Assert.Equal("http/1.1", client.Tls.NegotiatedApplicationProtocol.ToString());
    }

    [Theory]
    [InlineData("other.test")]
    [InlineData("API.TEST.evil")]
    [InlineData("")]
    public async Task A_ClientHello_whose_SNI_is_not_the_CONNECT_host_is_blocked_and_recorded(string sni)
    {
        await using var rig = await InspectionRig.StartAsync();
        var (proxy, records, _) = Start(rig);
        await using var p = proxy;

        // An empty TargetHost sends no SNI at all.
        await Assert.ThrowsAnyAsync<Exception>(() => TlsTunnelClient.OpenAsync(proxy.EndPoint, $"{InspectionRig.Host}:{rig.Port}", sni, rig.Ca.Certificate));
        await WaitForAsync(() => !records.Records.IsEmpty);

        var record = Assert.Single(records.Records);
        Assert.Equal((403, "BLOCK", sni.Length == 0 ? Reasons.SniMissing : Reasons.SniMismatch), (record.Status, record.Decision, record.Reason));
        Assert.Empty(rig.Origin.Seen);
    }

    [Fact]
    public async Task The_SNI_is_compared_without_case()
    {
        await using var rig = await InspectionRig.StartAsync();
        var (proxy, _, _) = Start(rig);
        await using var p = proxy;

        await using var client = await TlsTunnelClient.OpenAsync(proxy.EndPoint, $"{InspectionRig.Host}:{rig.Port}", InspectionRig.Host.ToUpperInvariant(), rig.Ca.Certificate);
        await client.SendAsync($"GET /case HTTP/1.1\r\nHost: Api.Test:{rig.Port}\r\n\r\n");

        Assert.Equal(200, (await client.ReadResponseAsync()).Head.Status);
    }

    /// <summary>Heads with the reason each is refused: another host or port (a missing port is 443), not origin-form, no or two Host.</summary>
    private static (string Head, string Reason)[] WrongHeads(int port) =>
    [
        ($"GET /x HTTP/1.1\r\nHost: {InspectionRig.Opaque}:{port}\r\n\r\n", "host_mismatch"),
        ($"GET /x HTTP/1.1\r\nHost: {InspectionRig.Host}:{port + 1}\r\n\r\n", "host_mismatch"),
        ($"GET /x HTTP/1.1\r\nHost: {InspectionRig.Host}\r\n\r\n", "host_mismatch"),
        ($"GET https://{InspectionRig.Host}:{port}/x HTTP/1.1\r\nHost: {InspectionRig.Host}:{port}\r\n\r\n", "not_origin_form"),
        ($"CONNECT {InspectionRig.Opaque}:{port} HTTP/1.1\r\nHost: {InspectionRig.Opaque}:{port}\r\n\r\n", "not_origin_form"),
        ("GET /x HTTP/1.1\r\n\r\n", "missing_host"),
        ($"GET /x HTTP/1.1\r\nHost: {InspectionRig.Host}:{port}\r\nHost: {InspectionRig.Host}:{port}\r\n\r\n", "duplicate_host"),
    ];

    [Fact]
    public async Task A_request_for_another_host_or_not_in_origin_form_is_refused_400_audited_and_closes()
    {
        await using var rig = await InspectionRig.StartAsync();
        foreach (var (head, reason) in WrongHeads(rig.Port))
        {
            var (proxy, records, _) = Start(rig);
            await using var p = proxy;
            await using var client = await TlsTunnelClient.OpenAsync(proxy.EndPoint, $"{InspectionRig.Host}:{rig.Port}", InspectionRig.Host, rig.Ca.Certificate);

            await client.SendAsync(head);
            var (response, _) = await client.ReadResponseAsync();

            Assert.Equal(400, response.Status);
            Assert.Equal(reason, response["X-ChronoGuard-Reason"]);
            Assert.Equal("close", response["Connection"]);
            Assert.True(await client.ClosedAsync(), reason);
            Assert.Contains((400, "DENY", reason), records.Records.Select(r => (r.Status, r.Decision, r.Reason)));
        }

        Assert.Empty(rig.Origin.Seen);
    }

    [Fact]
    public async Task An_upstream_whose_certificate_does_not_name_the_host_is_502_upstream_tls_invalid_and_recorded()
    {
        await using var rig = await InspectionRig.StartAsync();
        var (proxy, records, _) = Start(rig, inspect: InspectionRig.Misnamed);
        await using var p = proxy;
        using var client = rig.Client(proxy);

        using var response = await client.GetAsync(rig.Url("/secret", InspectionRig.Misnamed));

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal(ProxyReasons.UpstreamTlsInvalid, response.Headers.GetValues("X-ChronoGuard-Reason").Single());
        Assert.Contains((502, "ALLOW", ProxyReasons.UpstreamTlsInvalid), records.Records.Select(r => (r.Status, r.Decision, r.Reason)));
        Assert.Equal(("GET", "/secret"), records.Requests.Last());
        Assert.Empty(rig.Origin.Seen);
    }

    [Fact]
    public async Task An_upstream_whose_certificate_chains_to_an_untrusted_CA_is_502_upstream_tls_invalid()
    {
        await using var rig = await InspectionRig.StartAsync();
        using var rogueCa = new TestCa("rogue CA");
        await using var rogue = await TlsEchoOrigin.StartAsync(rogueCa.Issue(InspectionRig.Host));
        var (proxy, records, _) = Start(rig);
        await using var p = proxy;
        using var client = rig.Client(proxy);

        using var response = await client.GetAsync(new Uri($"https://{InspectionRig.Host}:{rogue.Port}/secret"));

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal(ProxyReasons.UpstreamTlsInvalid, response.Headers.GetValues("X-ChronoGuard-Reason").Single());
        Assert.Contains((502, "ALLOW", ProxyReasons.UpstreamTlsInvalid), records.Records.Select(r => (r.Status, r.Decision, r.Reason)));
        Assert.Empty(rogue.Seen);
    }

    [Fact]
    public async Task A_CONNECT_to_a_host_not_inspected_stays_an_opaque_tunnel_with_the_origin_certificate()
    {
        await using var rig = await InspectionRig.StartAsync();
        var (proxy, records, gate) = Start(rig);
        await using var p = proxy;
        // Trusting only the origin's CA: this works only if the proxy did not terminate TLS.
        using var client = rig.Client(proxy, trusted: rig.OriginCa.Certificate);

        using var response = await client.GetAsync(rig.Url("/opaque", InspectionRig.Opaque));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("GET /opaque\n", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal([FrontEnd.Connect], gate.FrontEnds);
        Assert.Equal([("CONNECT", "")], records.Requests);
    }

    [Fact]
    public async Task An_event_stream_is_relayed_as_it_arrives()
    {
        await using var rig = await InspectionRig.StartAsync();
        var (proxy, _, _) = Start(rig);
        await using var p = proxy;
        using var client = rig.Client(proxy);

        using var response = await client.GetAsync(rig.Url("/sse"), HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());

        // The origin holds the second event until the first has reached the client through the proxy.
        Assert.Equal("data: one", await reader.ReadLineAsync());
        rig.Origin.ReleaseStream();
        Assert.Equal(string.Empty, await reader.ReadLineAsync());
        Assert.Equal("data: two", await reader.ReadLineAsync());
    }

    [Fact]
    public async Task Upstream_TLS_connections_are_reused_across_requests_and_across_the_agent_tunnels()
    {
        await using var rig = await InspectionRig.StartAsync();
        var (proxy, _, gate) = Start(rig);
        await using var p = proxy;
        var ids = new List<string>();
        for (var tunnel = 0; tunnel < 3; tunnel++)
        {
            // A new client each time: a new connection to the proxy, a new CONNECT, a new client TLS.
            using var client = rig.Client(proxy);
            ids.Add(await client.GetStringAsync(rig.Url("/conn")));
            ids.Add(await client.GetStringAsync(rig.Url("/conn")));
            client.Dispose();
            await WaitForAsync(() => proxy.Server.ActiveConnections == 0);
        }

        Assert.Equal(3, gate.FrontEnds.Count(f => f == FrontEnd.Connect));
        Assert.Single(ids.Distinct());
        Assert.Single(rig.Origin.Connections);
    }

    [Fact]
    public async Task A_client_that_closes_after_each_request_still_leaves_its_upstream_for_the_next_tunnel()
    {
        await using var rig = await InspectionRig.StartAsync();
        var (proxy, _, _) = Start(rig);
        await using var p = proxy;
        var ids = new List<string>();
        for (var tunnel = 0; tunnel < 3; tunnel++)
        {
            await using var client = await TlsTunnelClient.OpenAsync(proxy.EndPoint, $"{InspectionRig.Host}:{rig.Port}", InspectionRig.Host, rig.Ca.Certificate);
            await client.SendAsync($"GET /conn HTTP/1.1\r\nHost: {InspectionRig.Host}:{rig.Port}\r\nConnection: close\r\n\r\n");
            var (head, body) = await client.ReadResponseAsync();
            Assert.Equal("close", head["Connection"]);
            ids.Add(body);
            Assert.True(await client.ClosedAsync());
            await WaitForAsync(() => proxy.Server.ActiveConnections == 0);
        }

        Assert.Single(ids.Distinct());
        Assert.Single(rig.Origin.Connections);
    }

    [Fact]
    public async Task As_many_upstreams_as_an_agent_had_in_flight_to_one_host_wait_for_its_next_tunnels()
    {
        // More tunnels at once than a small pool bound: each holds its own upstream until it ends.
        const int Tunnels = 20;
        await using var rig = await InspectionRig.StartAsync();
        var (proxy, _, _) = Start(rig);
        await using var p = proxy;
        for (var round = 0; round < 2; round++)
        {
            var clients = new List<TlsTunnelClient>();
            try
            {
                for (var i = 0; i < Tunnels; i++)
                {
                    clients.Add(await TlsTunnelClient.OpenAsync(proxy.EndPoint, $"{InspectionRig.Host}:{rig.Port}", InspectionRig.Host, rig.Ca.Certificate));
                }

                foreach (var client in clients)
                {
                    await client.SendAsync($"GET /conn HTTP/1.1\r\nHost: {InspectionRig.Host}:{rig.Port}\r\n\r\n");
                    Assert.Equal(200, (await client.ReadResponseAsync()).Head.Status);
                }
            }
            finally
            {
                foreach (var client in clients)
                {
                    await client.DisposeAsync();
                }
            }

            await WaitForAsync(() => proxy.Server.ActiveConnections == 0);
            Assert.Equal(Tunnels, proxy.Server.Context.Upstreams.Count);
        }

        // The second round's tunnels found every upstream the first round left: nothing was dialed again.
        Assert.Equal(Tunnels, rig.Origin.Connections.Count);
    }

    [Fact]
    public async Task A_pooled_upstream_the_origin_closed_is_not_reused_and_a_request_with_a_body_still_goes_through()
    {
        await using var rig = await InspectionRig.StartAsync();
        var (proxy, _, _) = Start(rig);
        await using var p = proxy;
        string first;
        using (var client = rig.Client(proxy))
        {
            first = await client.GetStringAsync(rig.Url("/conn-kept"));
        }

        // The tunnel is gone and its upstream pooled; then the origin closes that idle connection.
        await WaitForAsync(() => proxy.Server.ActiveConnections == 0);
        await rig.Origin.CloseKeptAsync();
        using var next = rig.Client(proxy);
        using var response = await next.PostAsync(rig.Url("/submit"), new StringContent("after-close"));

        // A body cannot be replayed on a fresh dial: only a pool that skips the closed upstream gets this through.
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("body: after-close", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(2, rig.Origin.Connections.Count);
        Assert.Contains(first, rig.Origin.Connections.Keys);
    }

    [Fact]
    public async Task A_large_response_arrives_whole()
    {
        await using var rig = await InspectionRig.StartAsync();
        var (proxy, _, _) = Start(rig);
        await using var p = proxy;
        using var client = rig.Client(proxy);

        var bytes = await client.GetByteArrayAsync(rig.Url("/big?n=3000000"));

        Assert.Equal(TestData.Sha256(TestData.Bytes(3_000_000, seed: 7)), TestData.Sha256(bytes));
    }

    [Fact]
    public async Task A_request_body_reaches_the_origin_and_its_plaintext_is_charged_to_the_request_not_the_tunnel()
    {
        await using var rig = await InspectionRig.StartAsync();
        var (proxy, records, _) = Start(rig);
        await using var p = proxy;
        var payload = "payload=" + new string('x', 10_000);
        using (var client = rig.Client(proxy))
        {
            using var response = await client.PostAsync(rig.Url("/submit"), new StringContent(payload));
            Assert.Contains("body: " + payload, await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        await records.WaitForClosesAsync(2);
        var (inner, tunnel) = (records.Closes.First(), records.Closes.Last());
        Assert.InRange(inner.BytesUp, payload.Length, payload.Length + 1024);
        Assert.True(inner.BytesDown > payload.Length, $"bytes down {inner.BytesDown}");
        Assert.Equal(0, tunnel.BytesUp);
    }

    [Fact]
    public async Task A_WebSocket_upgrade_inside_an_inspected_tunnel_becomes_a_relay_whose_bytes_are_charged()
    {
        await using var rig = await InspectionRig.StartAsync();
        var (proxy, records, _) = Start(rig);
        await using var p = proxy;
        using var socket = new System.Net.WebSockets.ClientWebSocket();
        socket.Options.Proxy = new WebProxy(proxy.Uri);
        socket.Options.RemoteCertificateValidationCallback = (_, certificate, _, errors) => InspectionRig.ChainsTo(rig.Ca.Certificate, certificate, errors);

        await socket.ConnectAsync(new Uri($"wss://{InspectionRig.Host}:{rig.Port}/ws"), CancellationToken.None);
        var message = new string('m', 10_000);
        await socket.SendAsync(System.Text.Encoding.ASCII.GetBytes(message), System.Net.WebSockets.WebSocketMessageType.Text, true, CancellationToken.None);
        var buffer = new byte[20_000];
        var received = 0;
        System.Net.WebSockets.WebSocketReceiveResult result;
        do
        {
            result = await socket.ReceiveAsync(new ArraySegment<byte>(buffer, received, buffer.Length - received), CancellationToken.None);
            received += result.Count;
        }
        while (!result.EndOfMessage);
        await socket.CloseAsync(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);

        Assert.Equal(message, System.Text.Encoding.ASCII.GetString(buffer, 0, received));
        Assert.Equal([("CONNECT", ""), ("GET", "/ws")], records.Requests);
        await records.WaitForClosesAsync(2);
        // The upgraded request's close record counts the relayed frames as its egress (the tunnel's counts nothing of its own).
        var inner = records.Closes.First();
        Assert.True(inner.BytesUp > message.Length, $"bytes up {inner.BytesUp}");
        Assert.True(inner.BytesDown > message.Length, $"bytes down {inner.BytesDown}");
    }

    [Fact]
    public async Task Drain_ends_an_inspected_tunnel_idle_between_requests_and_its_record_says_drain()
    {
        await using var rig = await InspectionRig.StartAsync();
        var (proxy, records, _) = Start(rig);
        await using var p = proxy;
        await using var client = await TlsTunnelClient.OpenAsync(proxy.EndPoint, $"{InspectionRig.Host}:{rig.Port}", InspectionRig.Host, rig.Ca.Certificate);
        await client.SendAsync($"GET /one HTTP/1.1\r\nHost: {InspectionRig.Host}:{rig.Port}\r\n\r\n");
        Assert.Equal(200, (await client.ReadResponseAsync()).Head.Status);

        await proxy.Server.DrainAsync();

        Assert.True(await client.ClosedAsync());
        await records.WaitForClosesAsync(2);
        Assert.Equal([ProxyReasons.Complete, ProxyReasons.Drain], records.Closes.Select(c => c.Reason));
    }

    [Fact]
    public async Task A_drain_that_comes_while_a_request_is_answered_ends_the_tunnel_after_it_and_its_record_says_drain()
    {
        // The tunnel is not idle when the drain begins: its request is still being answered, and only
        // once the answer is done is the drain seen, between that request and the next.
        await using var rig = await InspectionRig.StartAsync();
        var (proxy, records, _) = Start(rig);
        await using var p = proxy;
        await using var client = await TlsTunnelClient.OpenAsync(proxy.EndPoint, $"{InspectionRig.Host}:{rig.Port}", InspectionRig.Host, rig.Ca.Certificate);
        await client.SendAsync($"GET /sse HTTP/1.1\r\nHost: {InspectionRig.Host}:{rig.Port}\r\n\r\n");
        await client.ReadThroughAsync("data: one");

        var drain = proxy.Server.DrainAsync();
        Assert.True(proxy.Server.IsDraining);
        rig.Origin.ReleaseStream();

        Assert.True(await client.ClosedAsync());
        await drain;
        await records.WaitForClosesAsync(2);
        Assert.Equal([ProxyReasons.Complete, ProxyReasons.Drain], records.Closes.Select(c => c.Reason));
    }

    /// <summary>Waits for a condition the proxy reaches on its own (a record written after the client saw the failure).</summary>
    internal static async Task WaitForAsync(Func<bool> condition)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (!condition())
        {
            await Task.Delay(10, deadline.Token);
        }
    }
}
