using System.Net;
using System.Net.Http.Headers;
using System.Text;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Proxy;

public sealed class ForwardingTests
{
    [Fact]
    public async Task HttpClient_through_the_proxy_reaches_a_plain_origin()
    {
        await using var origin = await KestrelOrigin.StartAsync();
        await using var proxy = TestProxy.Start();
        using var http = proxy.CreateClient();

        var response = await http.GetAsync(new Uri(origin.Address, "/hello"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("hello from origin", await response.Content.ReadAsStringAsync());
        Assert.Contains("1.1 chronoguard", response.Headers.Via.Select(v => v.ToString()));
    }

    [Fact]
    public async Task Keep_alive_reuses_the_client_connection_and_the_upstream_connection()
    {
        await using var origin = await KestrelOrigin.StartAsync();
        await using var proxy = TestProxy.Start();
        using var http = proxy.CreateClient();

        var ids = new HashSet<string>();
        for (var i = 0; i < 10; i++)
        {
            ids.Add(await http.GetStringAsync(new Uri(origin.Address, "/conn")));
        }

        Assert.Single(ids);
        Assert.Equal(1, proxy.Server.AcceptedTotal);
    }

    [Fact]
    public async Task Content_length_body_goes_up_and_comes_back()
    {
        await using var origin = await KestrelOrigin.StartAsync();
        await using var proxy = TestProxy.Start();
        using var http = proxy.CreateClient();
        var body = TestData.Bytes(3 * 1024 * 1024 + 17, seed: 1);

        using var content = new ByteArrayContent(body);
        var response = await http.PostAsync(new Uri(origin.Address, "/echo"), content);

        Assert.Equal(body.Length, response.Content.Headers.ContentLength);
        Assert.Equal(TestData.Sha256(body), TestData.Sha256(await response.Content.ReadAsByteArrayAsync()));
    }

    [Fact]
    public async Task Chunked_bodies_both_ways_keep_the_connection_alive()
    {
        await using var origin = await KestrelOrigin.StartAsync();
        await using var proxy = TestProxy.Start();
        using var http = proxy.CreateClient();

        for (var i = 0; i < 3; i++)
        {
            var body = TestData.Bytes(500_000 + i, seed: i);
            using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(origin.Address, "/echo?chunked=1"))
            {
                Content = new StreamContent(new MemoryStream(body)),
            };
            request.Headers.TransferEncodingChunked = true;

            using var response = await http.SendAsync(request);

            Assert.True(response.Headers.TransferEncodingChunked);
            Assert.Equal(TestData.Sha256(body), TestData.Sha256(await response.Content.ReadAsByteArrayAsync()));
        }

        Assert.Equal(1, proxy.Server.AcceptedTotal);
    }

    [Fact]
    public async Task Hop_by_hop_and_proxy_headers_are_not_forwarded()
    {
        await using var origin = await KestrelOrigin.StartAsync();
        await using var proxy = TestProxy.Start();
        using var client = await RawClient.ConnectAsync(proxy.EndPoint);
        await client.SendAsync(
            $"GET http://127.0.0.1:{origin.Port}/headers HTTP/1.1\r\nHost: 127.0.0.1:{origin.Port}\r\n" +
            "Proxy-Authorization: Basic YTpi\r\nProxy-Connection: keep-alive\r\nConnection: X-Secret, close\r\n" +
            "X-Secret: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nX-End-To-End: kept\r\n\r\n");

        var response = await client.ReadHeadAsync();
        var body = Encoding.ASCII.GetString(await client.ReadToEndAsync());

        Assert.Equal(200, response.Status);
        Assert.Equal("close", response["Connection"]);
        Assert.Contains("X-End-To-End: kept", body, StringComparison.Ordinal);
        Assert.Contains($"Host: 127.0.0.1:{origin.Port}", body, StringComparison.Ordinal);
        Assert.Contains("Via: 1.1 chronoguard", body, StringComparison.Ordinal);
        foreach (var gone in new[] { "Proxy-Authorization", "Proxy-Connection", "X-Secret", "Keep-Alive", "TE:" })
        {
            Assert.DoesNotContain(gone, body, StringComparison.OrdinalIgnoreCase);
        }
    }

    [Fact]
    public async Task Http10_client_without_host_is_forwarded_and_closed()
    {
        await using var origin = await KestrelOrigin.StartAsync();
        await using var proxy = TestProxy.Start();
        using var client = await RawClient.ConnectAsync(proxy.EndPoint);
        await client.SendAsync($"GET http://127.0.0.1:{origin.Port}/hello HTTP/1.0\r\n\r\n");

        var response = await client.ReadHeadAsync();
        var body = Encoding.ASCII.GetString(await client.ReadToEndAsync());

        Assert.Equal(200, response.Status);
        Assert.Equal("hello from origin", body);
    }

    [Fact]
    public async Task Pipelined_requests_are_answered_in_order()
    {
        await using var origin = await KestrelOrigin.StartAsync();
        await using var proxy = TestProxy.Start();
        using var client = await RawClient.ConnectAsync(proxy.EndPoint);
        var one = $"POST http://127.0.0.1:{origin.Port}/echo HTTP/1.1\r\nHost: 127.0.0.1:{origin.Port}\r\nContent-Length: 3\r\n\r\nxyz";
        var two = $"POST http://127.0.0.1:{origin.Port}/echo HTTP/1.1\r\nHost: 127.0.0.1:{origin.Port}\r\nContent-Length: 5\r\n\r\nabcde";
        await client.SendAsync(one + two);

        var first = await client.ReadHeadAsync();
        var firstBody = await client.ReadExactlyAsync(3);
        var second = await client.ReadHeadAsync();
        var secondBody = await client.ReadExactlyAsync(5);

        Assert.Equal((200, "xyz"), (first.Status, Encoding.ASCII.GetString(firstBody)));
        Assert.Equal(200, second.Status);
        Assert.Equal("abcde", Encoding.ASCII.GetString(secondBody));
    }

    [Fact]
    public async Task Large_chunked_response_arrives_intact()
    {
        await using var origin = await KestrelOrigin.StartAsync();
        await using var proxy = TestProxy.Start();
        using var http = proxy.CreateClient();
        var expected = TestData.Bytes(8 * 1024 * 1024, seed: 7);

        var body = await http.GetByteArrayAsync(new Uri(origin.Address, "/big?n=" + expected.Length));

        Assert.Equal(TestData.Sha256(expected), TestData.Sha256(body));
    }

    [Fact]
    public async Task Bytes_each_way_are_counted_per_request()
    {
        var gate = new RecordingGate();
        await using var origin = await KestrelOrigin.StartAsync();
        await using var proxy = TestProxy.Start(gate: gate);
        using var http = proxy.CreateClient();
        using var content = new ByteArrayContent(new byte[10_000]);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");

        var response = await http.PostAsync(new Uri(origin.Address, "/echo"), content);
        await response.Content.ReadAsByteArrayAsync();
        await gate.FirstClose.Task.WaitAsync(TimeSpan.FromSeconds(10));

        var close = Assert.Single(gate.Closes);
        // Up is egress: the body and the rewritten request head (SPEC §4: heads count).
        Assert.InRange(close.BytesUp, 10_000 + 40, 10_000 + 1024);
        Assert.True(close.BytesDown > 10_000, $"down {close.BytesDown}");
    }
}
