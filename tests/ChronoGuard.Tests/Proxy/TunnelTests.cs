using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Proxy;

public sealed class TunnelTests
{
    [Fact]
    public async Task HttpClient_reaches_a_TLS_origin_through_CONNECT()
    {
        await using var origin = await KestrelOrigin.StartAsync(tls: true);
        await using var proxy = TestProxy.Start();
        using var http = proxy.CreateClient();

        for (var i = 0; i < 3; i++)
        {
            Assert.Equal("hello from origin", await http.GetStringAsync(new Uri($"https://localhost:{origin.Port}/hello")));
        }

        Assert.Equal(1, proxy.Server.AcceptedTotal);
    }

    [Fact]
    public async Task Half_close_from_the_client_keeps_the_return_path_open()
    {
        // The origin answers only after the client's FIN: the tunnel must pass the FIN on and keep relaying.
        await using var origin = new TcpOrigin(async s =>
        {
            var buffer = new byte[4096];
            long total = 0;
            int n;
            while ((n = await s.ReceiveAsync(buffer)) > 0)
            {
                total += n;
            }

            await s.SendAsync(Encoding.ASCII.GetBytes($"got {total} bytes"));
            s.Shutdown(SocketShutdown.Send);
        });
        var gate = new RecordingGate();
        await using var proxy = TestProxy.Start(gate: gate);
        using var client = await OpenTunnelAsync(proxy.EndPoint, origin.Port);

        await client.SendAsync(new byte[12345]);
        client.Socket.Shutdown(SocketShutdown.Send);
        var reply = Encoding.ASCII.GetString(await client.ReadToEndAsync());

        Assert.Equal("got 12345 bytes", reply);
        await gate.FirstClose.Task.WaitAsync(TimeSpan.FromSeconds(10));
        var close = Assert.Single(gate.Closes);
        Assert.Equal((12345L, 15L, "closed"), (close.BytesUp, close.BytesDown, close.Reason));
    }

    [Fact]
    public async Task Sixty_four_MiB_cross_one_tunnel_intact()
    {
        const int total = 64 * 1024 * 1024;
        await using var origin = TcpOrigin.Echo();
        await using var proxy = TestProxy.Start();
        using var client = await OpenTunnelAsync(proxy.EndPoint, origin.Port);

        var send = Task.Run(async () =>
        {
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var random = new Random(64);
            var chunk = new byte[256 * 1024];
            for (var sent = 0; sent < total; sent += chunk.Length)
            {
                random.NextBytes(chunk);
                sha.AppendData(chunk);
                await client.SendAsync(chunk);
            }

            client.Socket.Shutdown(SocketShutdown.Send);
            return Convert.ToHexStringLower(sha.GetHashAndReset());
        });
        var receive = Task.Run(async () =>
        {
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buffer = new byte[256 * 1024];
            long received = 0;
            int n;
            while ((n = await client.Socket.ReceiveAsync(buffer)) > 0)
            {
                sha.AppendData(buffer, 0, n);
                received += n;
            }

            return (received, Convert.ToHexStringLower(sha.GetHashAndReset()));
        });

        var sentHash = await send.WaitAsync(TimeSpan.FromMinutes(2));
        var (receivedBytes, receivedHash) = await receive.WaitAsync(TimeSpan.FromMinutes(2));
        Assert.Equal(total, receivedBytes);
        Assert.Equal(sentHash, receivedHash);
    }

    [Fact]
    public async Task A_thousand_concurrent_tunnels_each_carry_their_own_bytes()
    {
        const int count = 1000;
        await using var origin = TcpOrigin.Echo();
        await using var proxy = TestProxy.Start();

        var clients = await Task.WhenAll(Enumerable.Range(0, count).Select(_ => OpenTunnelAsync(proxy.EndPoint, origin.Port)));
        try
        {
            Assert.Equal(count, proxy.Server.ActiveConnections);
            await Task.WhenAll(clients.Select(async (c, i) =>
            {
                var message = Encoding.ASCII.GetBytes($"tunnel {i:D6} says hi");
                await c.SendAsync(message);
                Assert.Equal(message, await c.ReadExactlyAsync(message.Length, timeoutMs: 30_000));
            }));
        }
        finally
        {
            foreach (var c in clients)
            {
                c.Dispose();
            }
        }
    }

    [Fact]
    public async Task Bytes_the_client_sent_with_the_CONNECT_head_are_relayed()
    {
        await using var origin = TcpOrigin.Echo();
        await using var proxy = TestProxy.Start();
        using var client = await RawClient.ConnectAsync(proxy.EndPoint);

        await client.SendAsync($"CONNECT 127.0.0.1:{origin.Port} HTTP/1.1\r\nHost: 127.0.0.1:{origin.Port}\r\n\r\nearly bytes");

        Assert.Equal(200, (await client.ReadHeadAsync()).Status);
        Assert.Equal("early bytes", Encoding.ASCII.GetString(await client.ReadExactlyAsync(11)));
    }

    [Fact]
    public async Task Idle_tunnel_is_closed_after_IdleTimeoutMs_on_the_manual_clock()
    {
        var gate = new RecordingGate();
        var clock = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var origin = TcpOrigin.Echo();
        await using var proxy = TestProxy.Start(o => o.IdleTimeoutMs = 60_000, gate, time: clock);
        using var client = await OpenTunnelAsync(proxy.EndPoint, origin.Port);
        await client.SendAsync("ping");
        Assert.Equal("ping", Encoding.ASCII.GetString(await client.ReadExactlyAsync(4)));

        clock.Advance(TimeSpan.FromSeconds(30));
        await client.SendAsync("pong");
        Assert.Equal("pong", Encoding.ASCII.GetString(await client.ReadExactlyAsync(4)));
        clock.Advance(TimeSpan.FromSeconds(61));

        Assert.Empty(await client.ReadToEndAsync(timeoutMs: 10_000));
        await gate.FirstClose.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("idle_timeout", Assert.Single(gate.Closes).Reason);
    }

    internal static async Task<RawClient> OpenTunnelAsync(IPEndPoint proxy, int port)
    {
        var client = await RawClient.ConnectAsync(proxy);
        await client.SendAsync($"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n");
        var response = await client.ReadHeadAsync(timeoutMs: 30_000);
        Assert.Equal(200, response.Status);
        return client;
    }
}
