using System.Buffers;
using ChronoGuard.Http;

namespace ChronoGuard.Tests.Http;

/// <summary>
/// Every head, valid or not, gives the same result however its bytes are cut into segments and
/// however they arrive: whole, in 2 or 3 segments split at every offset, or as a growing prefix.
/// </summary>
public sealed class HeadSplitTests
{
    public static TheoryData<string> Requests => new()
    {
        "GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n",
        "GET http://a.test:8080/p?q=1 HTTP/1.1\r\nHost: a.test:8080\r\nUser-Agent: t\r\nAccept: */*\r\n\r\n",
        "POST http://a.test/up HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\nConnection: keep-alive, X-Foo\r\nX-Foo: 1\r\n\r\nhello",
        "POST http://a.test/up HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\nProxy-Authorization: Basic YTpi\r\n\r\n\u0016\u0003\u0001",
        "GET http://a.test/ HTTP/1.0\r\n\r\nGET http://b.test/ HTTP/1.0\r\n\r\n",
        "GET http://[::1]:81/ HTTP/1.1\r\nHost: [::1]:81\r\nX: a\tb caf\u00e9\r\n\r\n",
        "GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\nX:\r\nY:   \r\n\r\n",
        "POST http://a.test/ HTTP/1.1\r\nHost: a.test\r\nConnection: Content-Length\r\nContent-Length: 40\r\n\r\n",
        "POST http://a.test/ HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
        "POST http://a.test/ HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST http://a.test/ HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        "GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\nX: a\r\n b\r\n\r\n",
        "GET http://a.test/ HTTP/1.1\r\nHost : a.test\r\n\r\n",
        "GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\nX: a\rb\r\n\r\n",
        "GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\nX: a\nY: b\r\n\r\n",
        "GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\nX: \u0000\r\n\r\n",
        "GET http://a.test/ HTTP/1.1\r\nHost: b.test\r\n\r\n",
        "GET http://a.test/ HTTP/1.1\r\nX Y: a\r\n\r\n",
        "GET /relative HTTP/1.1\r\nHost: a.test\r\n\r\n",
        "\r\nGET http://a.test/ HTTP/1.1\r\n\r\n",
        "GET http://a.test/ HTTP/1.1\n\r\n",
        "GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\n",
        "GARBAGE\r\n\r\n",
        "GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\nX: " + new string('x', Heads.MaxHeadBytes) + "\r\n\r\n",
        "GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\n" + string.Concat(Enumerable.Repeat("X: y\r\n", Heads.MaxHeaders)) + "\r\n",
    };

    public static TheoryData<string> Responses => new()
    {
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        "HTTP/1.1 204 No Content\r\n\r\n",
        "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200\r\nTransfer-Encoding: chunked\r\nConnection: Transfer-Encoding\r\n\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\nConnection: Content-Length\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/2 200\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX: a\r\n\tb\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX : a\r\n\r\n",
        "HTTP/1.1 200 OK\nX: a\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
    };

    [Theory]
    [MemberData(nameof(Requests))]
    public void Request_heads_parse_the_same_at_every_split(string head) => AssertSplitInvariant(Heads.Latin1(head), isRequest: true);

    [Theory]
    [MemberData(nameof(Responses))]
    public void Response_heads_parse_the_same_at_every_split(string head) => AssertSplitInvariant(Heads.Latin1(head), isRequest: false);

    private static void AssertSplitInvariant(byte[] bytes, bool isRequest)
    {
        var whole = Run(new ReadOnlySequence<byte>(bytes), isRequest);
        for (var i = 0; i <= bytes.Length; i++)
        {
            Assert.True(whole == Run(Segments.Split(bytes, i), isRequest), $"2 segments cut at {i}");
        }

        // All pairs for the short heads; a stride keeps the long ones (the size limits) to seconds.
        var stride = bytes.Length <= 160 ? 1 : 37;
        for (var i = 0; i <= bytes.Length; i += stride)
        {
            for (var j = i; j <= bytes.Length; j += stride)
            {
                Assert.True(whole == Run(Segments.Split(bytes, i, j), isRequest), $"3 segments cut at {i}, {j}");
            }
        }

        // Arrival: the reader sees a growing prefix (itself in two segments) until it decides, as from a pipe.
        for (var k = 0; k <= bytes.Length; k++)
        {
            var h = Heads.NewHead();
            var prefix = Segments.Split(bytes[..k], k / 2);
            var early = HeadReader.TryRead(prefix, h, out var earlyEnd, out var earlyError);
            if (early == HeadStatus.Complete)
            {
                // Complete on a prefix means the head ends within it: the rest is the next message.
                Assert.True(whole == Finish(prefix, h, isRequest, early, earlyError, earlyEnd), $"complete at prefix {k}");
                continue;
            }

            if (early == HeadStatus.Error)
            {
                Assert.True(whole == Describe(early, earlyError, 0, h, isRequest), $"error at prefix {k}");
                continue;
            }

            var full = Segments.Split(bytes, k, Math.Min(bytes.Length, k + 3));
            var status = HeadReader.TryRead(full, h, out var end, out var error);
            Assert.True(whole == Finish(full, h, isRequest, status, error, end), $"after prefix {k}");
        }
    }

    private static string Run(ReadOnlySequence<byte> input, bool isRequest)
    {
        var h = Heads.NewHead();
        var status = HeadReader.TryRead(input, h, out var end, out var error);
        return Finish(input, h, isRequest, status, error, end);
    }

    private static string Finish(ReadOnlySequence<byte> input, HttpHead h, bool isRequest, HeadStatus status, ParseError error, SequencePosition end)
    {
        if (status != HeadStatus.Complete)
        {
            return Describe(status, error, 0, h, isRequest);
        }

        var endOffset = input.Slice(0, end).Length;
        Assert.Equal(h.Length, endOffset);
        error = isRequest ? HttpHeadParser.ParseRequest(h) : HttpHeadParser.ParseResponse(h);
        return Describe(status, error, endOffset, h, isRequest);
    }

    private static string Describe(HeadStatus status, ParseError error, long end, HttpHead h, bool isRequest) =>
        Heads.Describe(status, error, end, h, isRequest);
}
