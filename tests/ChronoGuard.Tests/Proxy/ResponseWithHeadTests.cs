using System.Net.Sockets;
using System.Text;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Proxy;

/// <summary>
/// The forwarder sends the part of a <c>Content-Length</c> body that came with the response head in
/// the same send as the rewritten head: these pin that it sends exactly the body (never the bytes an
/// origin wrongly puts behind it), the rest as it comes, and around the size where it stops copying.
/// </summary>
public sealed class ResponseWithHeadTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(16 * 1024 - 1)]
    [InlineData(16 * 1024)]
    [InlineData(16 * 1024 + 1)]
    [InlineData(100_000)]
    public async Task A_body_that_arrives_with_its_head_is_relayed_whole_and_nothing_behind_it(int length)
    {
        var accepted = 0;
        await using var origin = new TcpOrigin(async s =>
        {
            Interlocked.Increment(ref accepted);
            var serial = 0;
            while (await ReadHeadAsync(s))
            {
                // Head, body and junk in one send: the junk is not part of any response.
                var body = TestData.Bytes(length, seed: serial++);
                var head = Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n\r\n");
                await s.SendAsync((byte[])[.. head, .. body, .. "HTTP/1.1 999 JUNK\r\n\r\n"u8]);
            }
        });
        await using var proxy = TestProxy.Start();
        using var client = await RawClient.ConnectAsync(proxy.EndPoint);

        for (var i = 0; i < 2; i++)
        {
            await client.SendAsync($"GET http://127.0.0.1:{origin.Port}/r{i} HTTP/1.1\r\nHost: 127.0.0.1:{origin.Port}\r\n\r\n");
            var response = await client.ReadHeadAsync();
            Assert.Equal(200, response.Status);
            Assert.Equal(length.ToString(System.Globalization.CultureInfo.InvariantCulture), response["Content-Length"]);
            Assert.Equal(TestData.Bytes(length, seed: 0), await client.ReadExactlyAsync(length));
        }

        // The second response came whole and first on the connection (no junk before its status line),
        // and an upstream with bytes left behind its response was not used again.
        Assert.Equal(2, Volatile.Read(ref accepted));
    }

    [Fact]
    public async Task The_rest_of_a_body_is_relayed_when_it_comes()
    {
        var rest = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var body = TestData.Bytes(50_000, seed: 7);
        await using var origin = new TcpOrigin(async s =>
        {
            await ReadHeadAsync(s);
            var head = Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Length: {body.Length}\r\n\r\n");
            await s.SendAsync((byte[])[.. head, .. body[..10]]);
            await rest.Task;
            await s.SendAsync(body[10..]);
            await ReadHeadAsync(s);
        });
        await using var proxy = TestProxy.Start();
        using var client = await RawClient.ConnectAsync(proxy.EndPoint);
        await client.SendAsync($"GET http://127.0.0.1:{origin.Port}/ HTTP/1.1\r\nHost: 127.0.0.1:{origin.Port}\r\n\r\n");

        Assert.Equal(200, (await client.ReadHeadAsync()).Status);
        Assert.Equal(body[..10], await client.ReadExactlyAsync(10));
        rest.SetResult();
        Assert.Equal(body[10..], await client.ReadExactlyAsync(body.Length - 10));
    }

    private static async Task<bool> ReadHeadAsync(Socket s)
    {
        var seen = new List<byte>();
        var one = new byte[1];
        while (await s.ReceiveAsync(one) == 1)
        {
            seen.Add(one[0]);
            if (seen.Count >= 4 && seen[^4] == '\r' && seen[^3] == '\n' && seen[^2] == '\r' && seen[^1] == '\n')
            {
                return true;
            }
        }

        return false;
    }
}
