using System.Net;
using System.Net.Sockets;
using System.Text;
using ChronoGuard.Policy;
using ChronoGuard.Proxy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Transparent;

/// <summary>
/// A redirected client that says nothing for <c>Transparent:FirstBytesMs</c> is decided as one whose
/// server speaks first (SMTP, MySQL) and its tunnel is dialed by the DNS guard's name for the address.
/// Staying silent must not be a way past what the client's own bytes would have been judged by: if it
/// speaks before its server does, that tunnel ends unused and the connection is served from its bytes
/// (an HTTP request decided with its path, a ClientHello named by its SNI); if the server spoke first
/// and the client's first bytes are a ClientHello, they are judged as any tunnel's ClientHello, before
/// one byte reaches the origin. Otherwise 200 ms of silence and then a request for a blocked path, or a
/// ClientHello for another name served at the same address (a CDN's), would pass unjudged.
/// </summary>
public sealed class TransparentSilentClientTests
{
    private const string Bound = "smtp.allowed.test";
    private static readonly byte[] AccessDenied = [21, 3, 3, 0, 2, 2, 49];

    private static string Policy(int port, string mode = "enforce", string extra = "") => $$"""
        {
          "version": 1,
          "mode": "{{mode}}",
          "network": { "allowPrivateDestinations": false, "allowedCidrs": ["127.0.0.0/8"], "allowedPorts": [{{port}}], "requireSniMatch": true },
          "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
          "policies": [ { "name": "p", "allowedDomains": ["allowed.test", "*.allowed.test"], "blockedDomains": ["evil.test"] {{extra}} } ]
        }
        """;

    public static TheoryData<string, string> Refused => new()
    {
        { "blocked name", Reasons.SniMismatch },
        { "allowed name, not the bound one", Reasons.SniMismatch },
        { "split over two records", Reasons.SniMismatch },
        { "no SNI", Reasons.SniMissing },
        { "ECH", Reasons.SniEch },
        { "behind a warning alert", Reasons.NotTls },
    };

    [Theory]
    [MemberData(nameof(Refused))]
    public async Task A_ClientHello_after_silence_is_judged_before_any_of_it_reaches_the_origin(string shape, string reason)
    {
        var hello = shape switch
        {
            "blocked name" => await ClientHellos.CaptureAsync("evil.test"),
            "allowed name, not the bound one" => await ClientHellos.CaptureAsync("www.allowed.test"),
            "split over two records" => ClientHellos.SplitIntoTwoRecords(await ClientHellos.CaptureAsync("evil.test"), 40),
            "no SNI" => await ClientHellos.CaptureAsync("127.0.0.1"),
            "behind a warning alert" => [21, 3, 1, 0, 2, 1, 90, .. await ClientHellos.CaptureAsync("evil.test")],
            _ => ClientHellos.WithExtension(await ClientHellos.CaptureAsync(Bound), 0xfe0d, [0, 0, 1, 0, 1, 7, 0, 0, 0, 0]),
        };
        await using var t = await SilentTunnel.OpenAsync(greeting: true);
        await t.Client.SendAsync(hello);

        Assert.Empty(await t.Client.ReadToEndAsync());
        await t.Rig.Gate.WaitForClosesAsync(1);
        Assert.Equal(("ALLOW", Bound), (Assert.Single(t.Rig.Gate.Records).Decision, Assert.Single(t.Rig.Gate.Destinations).Host));
        var close = Assert.Single(t.Rig.Gate.Closes);
        Assert.Equal((reason, true, 0L), (close.Reason, close.Established, close.BytesUp));
        Assert.Equal(0, await t.Origin.ReceivedAsync());
    }

    [Fact]
    public async Task A_ClientHello_before_the_silent_server_speaks_ends_that_tunnel_unused_and_is_named_by_its_SNI()
    {
        var hello = await ClientHellos.CaptureAsync("evil.test");
        await using var t = await SilentTunnel.OpenAsync(greeting: false);
        await t.Client.SendAsync(hello);

        Assert.Equal(AccessDenied, await t.Client.ReadToEndAsync());
        Assert.Equal(["ALLOW", "BLOCK"], t.Rig.Gate.Records.Select(r => r.Decision));
        Assert.Equal("domain_blocked", t.Rig.Gate.Records.Last().Reason);
        var unused = t.Rig.Gate.Closes.First();
        Assert.Equal((ProxyReasons.ClientSpokeFirst, 0L, 0L), (unused.Reason, unused.BytesUp, unused.BytesDown));
        Assert.Equal(0, await t.Origin.ReceivedAsync());
    }

    [Fact]
    public async Task An_HTTP_request_before_the_silent_server_speaks_is_decided_with_its_path_never_relayed_through_that_tunnel()
    {
        var rule = """, "rules": [ { "name": "no-secret", "priority": 1, "action": "deny", "when": [ { "field": "path", "op": "starts_with", "value": "/secret" } ] } ]""";
        await using var t = await SilentTunnel.OpenAsync(greeting: false, extra: rule);
        await t.Client.SendAsync($"GET /secret HTTP/1.1\r\nHost: {Bound}\r\n\r\n");

        Assert.Equal(403, (await t.Client.ReadHeadAsync()).Status);
        Assert.Equal("rule_deny", t.Rig.Gate.Records.Last().Reason);
        Assert.Equal(ProxyReasons.ClientSpokeFirst, t.Rig.Gate.Closes.First().Reason);
        Assert.Equal(0, await t.Origin.ReceivedAsync());
        Assert.Equal(1, t.Origin.Connections);
    }

    [Fact]
    public async Task An_allowed_HTTP_request_before_the_silent_server_speaks_is_forwarded_on_a_connection_of_its_own()
    {
        await using var t = await SilentTunnel.OpenAsync(greeting: false);
        await t.Client.SendAsync($"GET /ok HTTP/1.1\r\nHost: {Bound}\r\n\r\n");

        Assert.Equal(200, (await t.Client.ReadHeadAsync()).Status);
        Assert.Equal("ok", Encoding.ASCII.GetString(await t.Client.ReadExactlyAsync(2)));
        Assert.Equal(("GET", "/ok"), t.Rig.Gate.Requests.Last());
        Assert.Equal(0, await t.Origin.ReceivedAsync());
        Assert.Equal(2, t.Origin.Connections);
    }

    public static TheoryData<string> Passed => new() { "bound name", "bound name in capitals", "plain text" };

    [Theory]
    [MemberData(nameof(Passed))]
    public async Task First_bytes_that_are_not_a_ClientHello_for_another_name_are_relayed(string shape)
    {
        var first = shape switch
        {
            "bound name" => await ClientHellos.CaptureAsync(Bound),
            "bound name in capitals" => await ClientHellos.CaptureAsync(Bound.ToUpperInvariant()),
            _ => Encoding.ASCII.GetBytes("EHLO agent.local\r\n"),
        };
        await using var t = await SilentTunnel.OpenAsync(greeting: true);
        await t.Client.SendAsync(first);
        Assert.Equal(first, await t.Client.ReadExactlyAsync(first.Length));
        t.Client.Socket.Shutdown(SocketShutdown.Send);

        Assert.Empty(await t.Client.ReadToEndAsync());
        await t.Rig.Gate.WaitForClosesAsync(1);
        Assert.Equal("closed", Assert.Single(t.Rig.Gate.Closes).Reason);
        Assert.Equal(first.Length, await t.Origin.ReceivedAsync());
    }

    [Fact]
    public async Task Observe_mode_lets_a_late_ClientHello_for_another_name_through()
    {
        var hello = await ClientHellos.CaptureAsync("evil.test");
        await using var t = await SilentTunnel.OpenAsync(greeting: true, mode: "observe");
        await t.Client.SendAsync(hello);

        Assert.Equal(hello, await t.Client.ReadExactlyAsync(hello.Length));
    }

    /// <summary>
    /// A redirected connection to <see cref="Bound"/>'s address that said nothing until the sidecar
    /// decided it and dialed: returned once the origin has greeted through it, or (no greeting) once
    /// the origin has accepted it.
    /// </summary>
    private sealed class SilentTunnel(SilentOrigin origin, TransparentRig rig, RawClient client) : IAsyncDisposable
    {
        public SilentOrigin Origin => origin;

        public TransparentRig Rig => rig;

        public RawClient Client => client;

        public static async Task<SilentTunnel> OpenAsync(bool greeting, string mode = "enforce", string extra = "")
        {
            var origin = new SilentOrigin(greeting);
            var rig = TransparentRig.Start(Policy(origin.Port, mode, extra), firstBytesMs: 50);
            rig.Answered(Bound, IPAddress.Loopback);
            var client = await rig.ConnectAsync(new IPEndPoint(IPAddress.Loopback, origin.Port));
            var tunnel = new SilentTunnel(origin, rig, client);
            try
            {
                if (greeting)
                {
                    Assert.Equal(SilentOrigin.Greeting, await client.ReadExactlyAsync(SilentOrigin.Greeting.Length));
                }
                else
                {
                    await origin.Accepted;
                }

                return tunnel;
            }
            catch
            {
                await tunnel.DisposeAsync();
                throw;
            }
        }

        public async ValueTask DisposeAsync()
        {
            client.Dispose();
            await rig.DisposeAsync();
            await origin.DisposeAsync();
        }
    }

    /// <summary>
    /// An origin whose first connection greets (as an SMTP server does) when asked, then echoes what it
    /// gets and counts it until the client's FIN or a reset; any later connection is an HTTP server's
    /// that answers one request <c>200 ok</c>.
    /// </summary>
    private sealed class SilentOrigin : IAsyncDisposable
    {
        public static readonly byte[] Greeting = Encoding.ASCII.GetBytes("220 smtp.allowed.test ESMTP\r\n");

        private readonly TaskCompletionSource _accepted = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource<int> _received = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TcpOrigin _origin;
        private int _connections;

        public SilentOrigin(bool greeting)
        {
            _origin = new TcpOrigin(async s =>
            {
                if (Interlocked.Increment(ref _connections) > 1)
                {
                    await AnswerOneRequestAsync(s);
                    return;
                }

                var total = 0;
                try
                {
                    if (greeting)
                    {
                        await s.SendAsync(Greeting);
                    }

                    _accepted.TrySetResult();
                    var buffer = new byte[64 * 1024];
                    int n;
                    while ((n = await s.ReceiveAsync(buffer)) > 0)
                    {
                        total += n;
                        await s.SendAsync(buffer.AsMemory(0, n));
                    }

                    s.Shutdown(SocketShutdown.Send);
                }
                catch (SocketException)
                {
                }
                finally
                {
                    _received.TrySetResult(total);
                }
            });
        }

        public int Connections => Volatile.Read(ref _connections);

        public int Port => _origin.Port;

        public Task Accepted => _accepted.Task.WaitAsync(TimeSpan.FromSeconds(30));

        /// <summary>The bytes the client's side of the tunnel delivered, once the sidecar has closed it.</summary>
        public Task<int> ReceivedAsync() => _received.Task.WaitAsync(TimeSpan.FromSeconds(30));

        public ValueTask DisposeAsync() => _origin.DisposeAsync();

        private static async Task AnswerOneRequestAsync(Socket s)
        {
            var head = new List<byte>();
            var buffer = new byte[4096];
            while (head.Count < 4 || !head[^4..].SequenceEqual("\r\n\r\n"u8.ToArray()))
            {
                var n = await s.ReceiveAsync(buffer);
                if (n == 0)
                {
                    return;
                }

                head.AddRange(buffer.AsSpan(0, n));
            }

            await s.SendAsync("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"u8.ToArray());
            s.Shutdown(SocketShutdown.Send);
        }
    }
}
