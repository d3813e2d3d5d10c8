using System.Net.Sockets;
using System.Text;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Http;

/// <summary>The framing promises end to end: a real proxy between a raw client and a raw origin.</summary>
public sealed class ForwardedFramingTests
{
    [Theory]
    [InlineData("Connection: Content-Length")]
    [InlineData("Connection: keep-alive, content-length")]
    [InlineData("Connection: Host")]
    [InlineData("Content-Length: 5")] // a second one
    public async Task A_body_that_could_be_read_as_a_second_request_never_reaches_the_origin(string header)
    {
        var accepted = 0;
        await using var origin = new TcpOrigin(async s =>
        {
            Interlocked.Increment(ref accepted);
            await Task.Yield();
            s.Dispose();
        });
        var gate = new RecordingGate();
        await using var proxy = TestProxy.Start(gate: gate);
        using var client = await RawClient.ConnectAsync(proxy.EndPoint);
        var smuggled = "GET http://blocked.test/secret HTTP/1.1\r\nHost: blocked.test\r\n\r\n";
        await client.SendAsync(Encoding.ASCII.GetBytes(
            $"POST http://127.0.0.1:{origin.Port}/ HTTP/1.1\r\nHost: 127.0.0.1:{origin.Port}\r\n{header}\r\nContent-Length: {smuggled.Length}\r\n\r\n{smuggled}"));

        var response = await client.ReadHeadAsync();
        Assert.Equal(400, response.Status);
        Assert.Equal("DENY", response["X-ChronoGuard-Decision"]);
        var reason = header.StartsWith("Content-Length", StringComparison.Ordinal) ? "duplicate_content_length" : "framing_header_in_connection";
        Assert.Equal(reason, response["X-ChronoGuard-Reason"]);
        Assert.EndsWith($"(chronoguard: DENY {reason})", response.StatusLine, StringComparison.Ordinal);
        await client.ReadToEndAsync();
        Assert.Equal((400, "DENY", reason), (Assert.Single(gate.Records).Status, gate.Records.Single().Decision, gate.Records.Single().Reason));
        Assert.Equal(0, Volatile.Read(ref accepted)); // refused before any dial
    }

    [Theory]
    [InlineData("Connection: Content-Length\r\nContent-Length: 5")]
    [InlineData("Content-Length: 5\r\nContent-Length: 5")]
    [InlineData("Content-Length: 5, 5\r\nConnection: content-length")]
    public async Task An_origin_cannot_strip_or_repeat_the_framing_the_client_reads(string headers)
    {
        await using var origin = new TcpOrigin(async s =>
        {
            using var stream = new NetworkStream(s, ownsSocket: true);
            var buffer = new byte[4096];
            var have = 0;
            while (true)
            {
                var n = await stream.ReadAsync(buffer.AsMemory(have));
                if (n == 0)
                {
                    return;
                }

                have += n;
                var end = buffer.AsSpan(0, have).IndexOf("\r\n\r\n"u8);
                if (end >= 0)
                {
                    buffer.AsSpan(end + 4, have - end - 4).CopyTo(buffer);
                    have -= end + 4;
                    await stream.WriteAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\n{headers}\r\n\r\nhello"));
                }
            }
        });
        await using var proxy = TestProxy.Start();
        using var client = await RawClient.ConnectAsync(proxy.EndPoint);
        for (var i = 0; i < 2; i++)
        {
            // The second request on the same client connection only works if the first response was delimited.
            await client.SendAsync($"GET http://127.0.0.1:{origin.Port}/{i} HTTP/1.1\r\nHost: 127.0.0.1:{origin.Port}\r\n\r\n");
            var response = await client.ReadHeadAsync();
            Assert.Equal(200, response.Status);
            Assert.Equal("5", response["Content-Length"]);
            Assert.DoesNotContain("close", response["Connection"] ?? "", StringComparison.OrdinalIgnoreCase);
            Assert.Equal("hello", Encoding.ASCII.GetString(await client.ReadExactlyAsync(5)));
        }
    }
}
