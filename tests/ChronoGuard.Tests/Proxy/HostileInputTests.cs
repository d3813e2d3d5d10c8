using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using ChronoGuard.Proxy;
using ChronoGuard.Tests.Policy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Proxy;

/// <summary>
/// The real proxy with a real policy against shapes that used to pass it (issue 15 §5): path spellings
/// past path rules, host spellings past blocked names, an ECH hello past requireSniMatch, a second
/// Proxy-Authorization, an origin dressing up as a refusal.
/// </summary>
public sealed class HostileInputTests
{
    private static string PolicyJson(int port) => $$"""
        {
          "version": 1,
          "defaultAction": "allow",
          "network": { "allowPrivateDestinations": false, "allowedCidrs": ["127.0.0.0/8"], "allowedPorts": [{{port}}], "requireSniMatch": true },
          "agents": [
            { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] },
            { "id": "alice", "tokenSha256": "$TOKEN", "policies": ["p"] },
            { "id": "bob", "tokenSha256": "$TOKEN", "status": "suspended", "policies": ["p"] }
          ],
          "policies": [ {
            "name": "p",
            "blockedDomains": ["blocked.cg.test"],
            "rules": [
              { "name": "no-secret", "action": "deny", "when": [ { "field": "path", "op": "starts_with", "value": "/secret" } ] },
              { "name": "no-admin", "action": "deny", "when": [ { "field": "path", "op": "regex", "value": "^/admin(/|$)" } ] }
            ] } ]
        }
        """;

    [Theory]
    [InlineData("/%73ecret")]
    [InlineData("//secret")]
    [InlineData("/./secret")]
    [InlineData("/x/../secret")]
    [InlineData("/x/y/../../secret/file")]
    [InlineData("/secret;x")]
    [InlineData("/a/..;/secret")]
    [InlineData("/%61dmin/users")]
    [InlineData("/admin;/users")]
    [InlineData("/admin;jsessionid=1")]
    [InlineData("//admin")]
    [InlineData("/admin/./")]
    [InlineData("/x/..//admin?q=1")]
    public async Task Spellings_of_a_denied_path_are_denied_and_never_reach_the_origin(string path)
    {
        await using var fixture = await Fixture.StartAsync();
        var response = await fixture.SendAsync($"GET http://localhost:{fixture.Port}{path} HTTP/1.1\r\nHost: localhost:{fixture.Port}\r\n{PolicyEngines.Credentials()}\r\n");

        Assert.Equal((403, "POLICY_VIOLATION"), (response.Status, response["X-ChronoGuard-Decision"]));
        Assert.Equal("rule_deny", Assert.Single(fixture.Gate.Records).Reason);
        Assert.Empty(fixture.Received);
    }

    [Theory]
    [InlineData("/x/%2e%2e/secret")]
    [InlineData("/x/.%2E/admin")]
    [InlineData("/%2e/secret")]
    [InlineData("/x/%2e%2e;p/secret")]
    [InlineData("/secret%2fx")]
    [InlineData("/public%2F..%2Fsecret")]
    [InlineData("/..\\secret")]
    [InlineData("/a%5c..%5csecret")]
    [InlineData("/a%00")]
    [InlineData("/a%zz")]
    [InlineData("/a%2")]
    public async Task A_path_that_cannot_be_normalised_without_guessing_is_400_bad_path_and_audited(string path)
    {
        await using var fixture = await Fixture.StartAsync();
        var response = await fixture.SendAsync($"GET http://localhost:{fixture.Port}{path} HTTP/1.1\r\nHost: localhost:{fixture.Port}\r\n{PolicyEngines.Credentials()}\r\n");

        Assert.Equal((400, "DENY"), (response.Status, response["X-ChronoGuard-Decision"]));
        var record = Assert.Single(fixture.Gate.Records);
        Assert.Equal((400, "bad_path"), (record.Status, record.Reason));
        Assert.Equal(record.Seq.ToString(System.Globalization.CultureInfo.InvariantCulture), response["X-ChronoGuard-Audit-Seq"]);
        Assert.Empty(fixture.Received);
    }

    [Theory]
    [InlineData("//docs/./a/../%62ook;v=1?q=/../%2e%2e", "/docs/book;v=1?q=/../%2e%2e")]
    [InlineData("/%7Euser/%3b/file", "/~user/%3B/file")]
    [InlineData("/Secret", "/Secret")]
    [InlineData("/x/..", "/")]
    [InlineData("?q", "/?q")]
    public async Task The_origin_receives_exactly_the_path_that_was_decided(string path, string expected)
    {
        await using var fixture = await Fixture.StartAsync();
        var response = await fixture.SendAsync($"GET http://localhost:{fixture.Port}{path} HTTP/1.1\r\nHost: localhost:{fixture.Port}\r\n{PolicyEngines.Credentials()}\r\n");

        Assert.Equal(200, response.Status);
        Assert.Equal($"GET {expected} HTTP/1.1", Assert.Single(fixture.Received));
        Assert.Equal("default_allow", Assert.Single(fixture.Gate.Records).Reason);
    }

    [Theory]
    [InlineData(".blocked.cg.test")]
    [InlineData("blocked..cg.test")]
    [InlineData("blocked.cg.test..")]
    [InlineData("..blocked.cg.test")]
    [InlineData("blocked.cg..test.")]
    public async Task A_blocked_name_spelled_with_an_empty_label_is_400_bad_target_on_every_front_end(string host)
    {
        await using var fixture = await Fixture.StartAsync();
        var connect = await fixture.SendAsync($"CONNECT {host}:{fixture.Port} HTTP/1.1\r\n{PolicyEngines.Credentials()}\r\n");
        var plain = await fixture.SendAsync($"GET http://{host}:{fixture.Port}/ HTTP/1.1\r\nHost: {host}:{fixture.Port}\r\n{PolicyEngines.Credentials()}\r\n");
        var header = await fixture.SendAsync($"GET http://blocked.cg.test:{fixture.Port}/ HTTP/1.0\r\nHost: {host}:{fixture.Port}\r\n{PolicyEngines.Credentials()}\r\n");

        Assert.All([connect, plain, header], r => Assert.Equal((400, "DENY"), (r.Status, r["X-ChronoGuard-Decision"])));
        Assert.All(fixture.Gate.Records, r => Assert.Equal((400, "bad_target"), (r.Status, r.Reason)));
        Assert.Equal(3, fixture.Gate.Records.Count);
    }

    [Theory]
    [InlineData("blocked.cg.test")]
    [InlineData("blocked.cg.test.")]
    [InlineData("BLOCKED.Cg.TEST")]
    public async Task The_valid_spellings_of_a_blocked_name_are_blocked(string host)
    {
        await using var fixture = await Fixture.StartAsync();
        var connect = await fixture.SendAsync($"CONNECT {host}:{fixture.Port} HTTP/1.1\r\n{PolicyEngines.Credentials()}\r\n");
        Assert.Equal((403, "BLOCK"), (connect.Status, connect["X-ChronoGuard-Decision"]));
        Assert.Equal("domain_blocked", Assert.Single(fixture.Gate.Records).Reason);
    }

    [Fact]
    public async Task Two_Proxy_Authorization_headers_are_400_whatever_they_say()
    {
        await using var fixture = await Fixture.StartAsync();
        var bobThenAlice = PolicyEngines.Credentials("bob") + PolicyEngines.Credentials("alice");
        var plain = await fixture.SendAsync($"GET http://localhost:{fixture.Port}/ HTTP/1.1\r\nHost: localhost:{fixture.Port}\r\n{bobThenAlice}\r\n");
        var connect = await fixture.SendAsync($"CONNECT localhost:{fixture.Port} HTTP/1.1\r\n{bobThenAlice}\r\n");
        var same = await fixture.SendAsync($"CONNECT localhost:{fixture.Port} HTTP/1.1\r\n{PolicyEngines.Credentials("alice")}{PolicyEngines.Credentials("alice")}\r\n");

        Assert.All([plain, connect, same], r => Assert.Equal(400, r.Status));
        Assert.All(fixture.Gate.Records, r => Assert.Equal("duplicate_proxy_authorization", r.Reason));
        Assert.Equal(3, fixture.Gate.Records.Count);
        Assert.Empty(fixture.Received);

        var bob = await fixture.SendAsync($"CONNECT localhost:{fixture.Port} HTTP/1.1\r\n{PolicyEngines.Credentials("bob")}\r\n");
        Assert.Equal(403, bob.Status);
    }

    [Fact]
    public async Task A_ClientHello_with_encrypted_client_hello_is_refused_sni_ech_before_the_upstream_is_dialed()
    {
        await using var fixture = await Fixture.StartAsync();
        var hello = await ClientHellos.CaptureAsync("localhost");
        var ech = ClientHellos.WithExtension(hello, 0xfe0d, [0, 0, 1, 0, 1, 7, 0, 32, .. new byte[32], 0, 16, .. new byte[16]]);

        using var client = await RawClient.ConnectAsync(fixture.Proxy.EndPoint);
        await client.SendAsync($"CONNECT localhost:{fixture.Port} HTTP/1.1\r\n{PolicyEngines.Credentials()}\r\n");
        Assert.Equal(200, (await client.ReadHeadAsync()).Status);
        await client.SendAsync(ech);

        Assert.Empty(await client.ReadToEndAsync());
        var record = Assert.Single(fixture.Gate.Records);
        Assert.Equal((403, "BLOCK", "sni_ech"), (record.Status, record.Decision, record.Reason));
        Assert.Equal(0, fixture.Accepted);
    }

    /// <summary>
    /// On a port other than 443 bytes that are not TLS pass as another protocol; a TLS record a server
    /// skips before the ClientHello (BoringSSL drops leading warning alerts) must not carry a hello for
    /// another name past the check that way.
    /// </summary>
    [Theory]
    [InlineData("warning alert", new byte[] { 21, 3, 1, 0, 2, 1, 90 })]
    [InlineData("change_cipher_spec", new byte[] { 20, 3, 3, 0, 1, 1 })]
    public async Task A_TLS_record_a_server_skips_ahead_of_the_ClientHello_is_refused_not_tls_before_the_upstream_is_dialed(string shape, byte[] prefix)
    {
        await using var fixture = await Fixture.StartAsync();
        var hello = await ClientHellos.CaptureAsync("evil.test");

        using var client = await RawClient.ConnectAsync(fixture.Proxy.EndPoint);
        await client.SendAsync($"CONNECT localhost:{fixture.Port} HTTP/1.1\r\n{PolicyEngines.Credentials()}\r\n");
        Assert.Equal(200, (await client.ReadHeadAsync()).Status);
        await client.SendAsync([.. prefix, .. hello]);

        Assert.Empty(await client.ReadToEndAsync());
        var record = Assert.Single(fixture.Gate.Records);
        Assert.True((403, "BLOCK", "not_tls") == (record.Status, record.Decision, record.Reason), $"{shape}: {record}");
        Assert.Equal(0, fixture.Accepted);
    }

    [Fact]
    public async Task An_origin_s_X_ChronoGuard_headers_and_chronoguard_reason_phrase_never_reach_the_client()
    {
        await using var fixture = await Fixture.StartAsync(
            "HTTP/1.1 103 Early Hints (chronoguard: BLOCK x)\r\nX-ChronoGuard-Decision: BLOCK\r\nLink: </a.css>\r\n\r\n" +
            "HTTP/1.1 403 Forbidden (chronoguard: BLOCK domain_blocked)\r\nX-ChronoGuard-Decision: BLOCK\r\nX-ChronoGuard-Reason: domain_blocked\r\n" +
            "x-chronoguard-audit-seq: 12\r\nX-Origin: yes\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno");
        using var client = await RawClient.ConnectAsync(fixture.Proxy.EndPoint);
        await client.SendAsync($"GET http://localhost:{fixture.Port}/ HTTP/1.1\r\nHost: localhost:{fixture.Port}\r\n{PolicyEngines.Credentials()}\r\n");

        var interim = await client.ReadHeadAsync();
        Assert.Equal(("HTTP/1.1 103 Early Hints", "</a.css>"), (interim.StatusLine, interim["Link"]));
        Assert.DoesNotContain(interim.Headers.Keys, k => k.StartsWith("X-ChronoGuard", StringComparison.OrdinalIgnoreCase));
        var final = await client.ReadHeadAsync();
        Assert.Equal(("HTTP/1.1 403 Forbidden", "yes"), (final.StatusLine, final["X-Origin"]));
        Assert.DoesNotContain(final.Headers.Keys, k => k.StartsWith("X-ChronoGuard", StringComparison.OrdinalIgnoreCase));
        Assert.Equal("no", Encoding.ASCII.GetString(await client.ReadExactlyAsync(2)));
        Assert.Equal("default_allow", Assert.Single(fixture.Gate.Records).Reason);
    }

    /// <summary>A policy gate in front of a loopback origin that records each request line and answers with <c>reply</c>.</summary>
    private sealed class Fixture : IAsyncDisposable
    {
        private readonly TcpOrigin _origin;
        private readonly PolicyEngines _engines;
        private int _accepted;

        private Fixture(string? reply)
        {
            _origin = new TcpOrigin(async s =>
            {
                Interlocked.Increment(ref _accepted);
                var head = await ReadHeadAsync(s);
                if (head is null)
                {
                    return;
                }

                Received.Enqueue(head[..head.IndexOf("\r\n", StringComparison.Ordinal)]);
                await s.SendAsync(Encoding.ASCII.GetBytes(reply ?? "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"));
                s.Shutdown(SocketShutdown.Send);
            });
            _engines = new PolicyEngines(PolicyJson(_origin.Port));
            Gate = new RecordingGate(new PolicyGate(_engines.Engine, TimeProvider.System));
            Proxy = TestProxy.Start(gate: Gate, resolver: new MapResolver { ["localhost"] = IPAddress.Loopback });
        }

        public TestProxy Proxy { get; }

        public RecordingGate Gate { get; }

        public int Port => _origin.Port;

        public int Accepted => Volatile.Read(ref _accepted);

        public ConcurrentQueue<string> Received { get; } = new();

        public static Task<Fixture> StartAsync(string? reply = null) => Task.FromResult(new Fixture(reply));

        /// <summary>One request on its own connection; the response head.</summary>
        public async Task<RawResponse> SendAsync(string request)
        {
            using var client = await RawClient.ConnectAsync(Proxy.EndPoint);
            await client.SendAsync(Encoding.Latin1.GetBytes(request));
            return await client.ReadHeadAsync();
        }

        public async ValueTask DisposeAsync()
        {
            await Proxy.DisposeAsync();
            await _origin.DisposeAsync();
            _engines.Dispose();
        }

        private static async Task<string?> ReadHeadAsync(Socket s)
        {
            var buffer = new byte[16 * 1024];
            var have = 0;
            while (have < buffer.Length)
            {
                var n = await s.ReceiveAsync(buffer.AsMemory(have));
                if (n == 0)
                {
                    return null;
                }

                have += n;
                var end = buffer.AsSpan(0, have).IndexOf("\r\n\r\n"u8);
                if (end >= 0)
                {
                    return Encoding.Latin1.GetString(buffer, 0, end + 4);
                }
            }

            return null;
        }
    }
}
