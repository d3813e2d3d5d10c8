using System.Net.Sockets;
using System.Text;
using ChronoGuard.Proxy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Proxy;

/// <summary>
/// On one core a new connection runs on the accept loop's thread up to its first wait
/// (<see cref="ProxyOptions.ServeInline"/>). The suite runs on more cores, so these force that path:
/// clients that send nothing, or half a head, must not hold up the next accept, and every kind of
/// request still completes and is recorded.
/// </summary>
public sealed class ServeInlineTests
{
    [Fact]
    public async Task Silent_and_slow_clients_do_not_hold_up_the_accept_loop()
    {
        await using var origin = await KestrelOrigin.StartAsync();
        var gate = new RecordingGate();
        await using var proxy = TestProxy.Start(o => o.ServeInline = true, gate);

        // Connected and silent, and connected with half a head: each waits for bytes, off the loop.
        using var silent = await RawClient.ConnectAsync(proxy.EndPoint);
        using var half = await RawClient.ConnectAsync(proxy.EndPoint);
        await half.SendAsync($"GET http://127.0.0.1:{origin.Port}/hello HTTP/1.1\r\nHo");

        using var http = proxy.CreateClient();
        Assert.Equal("hello from origin", await http.GetStringAsync(new Uri(origin.Address, "/hello")));

        // The half head completes later and is served on its own connection.
        await half.SendAsync($"st: 127.0.0.1:{origin.Port}\r\nConnection: close\r\n\r\n");
        var response = await half.ReadHeadAsync();
        Assert.Equal(200, response.Status);
        Assert.Contains("hello from origin", Encoding.ASCII.GetString(await half.ReadToEndAsync()), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tunnels_refusals_and_bad_input_complete_on_the_inline_path()
    {
        await using var echo = TcpOrigin.Echo();
        var gate = new RecordingGate();
        await using var proxy = TestProxy.Start(o => o.ServeInline = true, gate);

        var tunnels = new List<Task>();
        for (var i = 0; i < 16; i++)
        {
            tunnels.Add(Task.Run(async () =>
            {
                using var client = await RawClient.ConnectAsync(proxy.EndPoint);
                await client.SendAsync($"CONNECT 127.0.0.1:{echo.Port} HTTP/1.1\r\nHost: 127.0.0.1:{echo.Port}\r\n\r\n");
                Assert.Equal(200, (await client.ReadHeadAsync()).Status);
                await client.SendAsync("ping");
                Assert.Equal("ping", Encoding.ASCII.GetString(await client.ReadExactlyAsync(4)));
                client.Socket.Shutdown(SocketShutdown.Send);
                Assert.Empty(await client.ReadToEndAsync());
            }));
        }

        await Task.WhenAll(tunnels);

        using var bad = await RawClient.ConnectAsync(proxy.EndPoint);
        await bad.SendAsync("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n");
        Assert.Equal(400, (await bad.ReadHeadAsync()).Status);

        await gate.WaitForClosesAsync(16);
        Assert.Equal(16, gate.Closes.Count(c => c.Reason == "closed"));
        Assert.Contains(gate.Records, r => r.Status == 400);
    }
}
