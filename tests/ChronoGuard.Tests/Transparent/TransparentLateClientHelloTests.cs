using System.Net;
using System.Net.Sockets;
using System.Text;
using ChronoGuard.Policy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Transparent;

/// <summary>
/// A redirected client that says nothing for <c>Transparent:FirstBytesMs</c> is decided as one whose
/// server speaks first (SMTP, MySQL) and its tunnel is dialed by the DNS guard's name for the address.
/// Off port 443 nothing is waited for before that dial, so its first bytes come later; when they are a
/// TLS ClientHello they are judged as the ClientHello of any other tunnel would have been, before one
/// byte of them reaches the origin. Otherwise staying silent for 200 ms, then sending a ClientHello for
/// another name hosted at the same address (a CDN's), would front past <c>requireSniMatch</c>.
/// </summary>
public sealed class TransparentLateClientHelloTests
{
    private const string Bound = "smtp.allowed.test";

    private static string Policy(int port, string mode = "enforce") => $$"""
        {
          "version": 1,
          "mode": "{{mode}}",
          "network": { "allowPrivateDestinations": false, "allowedCidrs": ["127.0.0.0/8"], "allowedPorts": [{{port}}], "requireSniMatch": true },
          "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
          "policies": [ { "name": "p", "allowedDomains": ["allowed.test", "*.allowed.test"], "blockedDomains": ["evil.test"] } ]
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
    public async Task A_ClientHello_that_arrives_while_the_tunnel_is_being_dialed_is_judged_too()
    {
        // No greeting: the hello is sent the moment the origin has accepted, so it may be in the
        // sidecar's buffer before the relay begins (the bytes the relay would send on first).
        var hello = await ClientHellos.CaptureAsync("evil.test");
        await using var t = await SilentTunnel.OpenAsync(greeting: false);
        await t.Client.SendAsync(hello);

        Assert.Empty(await t.Client.ReadToEndAsync());
        await t.Rig.Gate.WaitForClosesAsync(1);
        Assert.Equal(Reasons.SniMismatch, Assert.Single(t.Rig.Gate.Closes).Reason);
        Assert.Equal(0, await t.Origin.ReceivedAsync());
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

        public static async Task<SilentTunnel> OpenAsync(bool greeting, string mode = "enforce")
        {
            var origin = new SilentOrigin(greeting);
            var rig = TransparentRig.Start(Policy(origin.Port, mode), firstBytesMs: 50);
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
    /// An origin for one connection that greets (as an SMTP server does) when asked, then echoes what it
    /// gets and counts it until the client's FIN or a reset.
    /// </summary>
    private sealed class SilentOrigin : IAsyncDisposable
    {
        public static readonly byte[] Greeting = Encoding.ASCII.GetBytes("220 smtp.allowed.test ESMTP\r\n");

        private readonly TaskCompletionSource _accepted = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource<int> _received = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TcpOrigin _origin;

        public SilentOrigin(bool greeting)
        {
            _origin = new TcpOrigin(async s =>
            {
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

        public int Port => _origin.Port;

        public Task Accepted => _accepted.Task.WaitAsync(TimeSpan.FromSeconds(30));

        /// <summary>The bytes the client's side of the tunnel delivered, once the sidecar has closed it.</summary>
        public Task<int> ReceivedAsync() => _received.Task.WaitAsync(TimeSpan.FromSeconds(30));

        public ValueTask DisposeAsync() => _origin.DisposeAsync();
    }
}
