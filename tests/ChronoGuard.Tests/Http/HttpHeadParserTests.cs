using System.Text;
using ChronoGuard.Http;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Http;

public sealed class HttpHeadParserTests
{
    private const string Get = "GET http://a.test/p HTTP/1.1\r\nHost: a.test\r\n";
    private const string Post = "POST http://a.test/p HTTP/1.1\r\nHost: a.test\r\n";

    [Theory]
    [InlineData("Connection: Content-Length")]
    [InlineData("Connection: content-length")]
    [InlineData("Connection: CONTENT-LENGTH")]
    [InlineData("Connection: keep-alive, Content-Length")]
    [InlineData("Connection: Content-Length, close")]
    [InlineData("Connection: foo ,\tContent-Length\t, bar")]
    [InlineData("Connection: ,,Content-Length,,")]
    [InlineData("Connection: Transfer-Encoding")]
    [InlineData("Connection: x, transfer-encoding")]
    [InlineData("Connection: Host")]
    [InlineData("Connection: close,host")]
    [InlineData("Connection: keep-alive\r\nConnection: Content-Length")]
    [InlineData("Proxy-Connection: Content-Length")]
    [InlineData("Proxy-Connection: keep-alive, Host")]
    public void A_request_whose_Connection_names_a_framing_header_is_refused(string connection)
    {
        // The smuggling shape: with the length dropped as hop-by-hop, the origin would read the body as a request.
        var head = Post + connection + "\r\nContent-Length: 40\r\n\r\n";
        Assert.Equal(ParseError.FramingHeaderInConnection, Heads.Request(head));
        Assert.Equal(400, ParseErrors.StatusCode(ParseError.FramingHeaderInConnection));
        Assert.Equal("framing_header_in_connection", ParseErrors.Reason(ParseError.FramingHeaderInConnection));
    }

    [Theory]
    [InlineData("Connection: Content-Length-X", "Content-Length-X")]
    [InlineData("Connection: Content-Lengths", "Content-Lengths")]
    [InlineData("Connection: X-Host", "X-Host")]
    [InlineData("Connection: Hosts", "Hosts")]
    [InlineData("Connection: Transfer-Encodings", "Transfer-Encodings")]
    [InlineData("Connection: keep-alive, Foo", "Foo")]
    public void Connection_tokens_that_only_resemble_framing_headers_still_drop_their_header(string connection, string named)
    {
        var error = Heads.Request(Post + connection + "\r\n" + named + ": v\r\nContent-Length: 3\r\n\r\n", out var h);
        Assert.Equal(ParseError.None, error);
        Assert.Equal(3, h.ContentLength);
        var upstream = RewriteRequest(h);
        Assert.DoesNotContain(named + ":", upstream, StringComparison.Ordinal);
        Assert.Equal(1, Count(upstream, "Content-Length: 3\r\n"));
    }

    [Theory]
    [InlineData("Content-Length: 5\r\nContent-Length: 5")]
    [InlineData("Content-Length: 5\r\nContent-Length: 6")]
    [InlineData("Content-Length: 5, 5")]
    [InlineData("Content-Length: 5,5")]
    [InlineData("Content-Length: 5, 6")]
    [InlineData("Content-Length: 0\r\ncontent-length: 0")]
    public void A_request_with_more_than_one_Content_Length_is_refused(string lengths)
    {
        Assert.Equal(ParseError.DuplicateContentLength, Heads.Request(Post + lengths + "\r\n\r\n"));
    }

    [Fact]
    public void A_forwarded_request_carries_its_framing_once_whatever_its_headers_said()
    {
        Assert.Equal(ParseError.None, Heads.Request(Post + "Connection: foo\r\nFoo: 1\r\ncontent-length:   7  \r\nX: y\r\n\r\n", out var h));
        var upstream = RewriteRequest(h);
        Assert.Equal(1, Count(upstream, "Content-Length"));
        Assert.Contains("\r\nContent-Length: 7\r\n", upstream, StringComparison.Ordinal);
        Assert.Contains("\r\nX: y\r\n", upstream, StringComparison.Ordinal);

        Assert.Equal(ParseError.None, Heads.Request(Post + "Transfer-Encoding: chunked\r\n\r\n", out h));
        upstream = RewriteRequest(h);
        Assert.Equal(1, Count(upstream, "Transfer-Encoding: chunked\r\n"));
        Assert.Equal(0, Count(upstream, "Content-Length"));
    }

    [Theory]
    [InlineData("Content-Length: 5\r\nConnection: Content-Length", "Content-Length: 5\r\n")]
    [InlineData("Connection: content-length, keep-alive\r\nContent-Length: 5", "Content-Length: 5\r\n")]
    [InlineData("Content-Length: 5\r\nContent-Length: 5", "Content-Length: 5\r\n")]
    [InlineData("Content-Length: 5, 5", "Content-Length: 5\r\n")]
    [InlineData("Content-Length: 5,5\r\nContent-Length: 5", "Content-Length: 5\r\n")]
    [InlineData("Transfer-Encoding: chunked\r\nConnection: Transfer-Encoding", "Transfer-Encoding: chunked\r\n")]
    public void A_response_keeps_exactly_one_framing_header_whatever_its_Connection_header_lists(string headers, string framing)
    {
        var error = Heads.Response("HTTP/1.1 200 OK\r\n" + headers + "\r\n\r\n", out var response);
        Assert.Equal(ParseError.None, error);
        Assert.True(response.KeepAlive);
        Assert.Equal(ParseError.None, Heads.Request(Get + "\r\n", out var request));
        var buffer = new byte[8192];
        var n = ResponseRewriter.Write(response, request, keepAlive: true, buffer);
        var relayed = Encoding.Latin1.GetString(buffer, 0, n);
        Assert.Equal(1, Count(relayed, framing));
        Assert.Equal(framing.StartsWith("Content", StringComparison.Ordinal) ? 1 : 0, Count(relayed.ToUpperInvariant(), "CONTENT-LENGTH"));
        Assert.Equal(framing.StartsWith("Transfer", StringComparison.Ordinal) ? 1 : 0, Count(relayed.ToUpperInvariant(), "TRANSFER-ENCODING"));
    }

    [Theory]
    [InlineData("Content-Length: 5\r\nContent-Length: 6")]
    [InlineData("Content-Length: 5, 6")]
    [InlineData("Content-Length: 5\r\nContent-Length: 5, 4")]
    public void A_response_with_disagreeing_Content_Lengths_is_bad(string lengths)
    {
        Assert.Equal(ParseError.DuplicateContentLength, Heads.Response("HTTP/1.1 200 OK\r\n" + lengths + "\r\n\r\n", out _));
    }

    [Theory]
    [InlineData("Transfer-Encoding: gzip")]
    [InlineData("Transfer-Encoding: identity")]
    [InlineData("Transfer-Encoding: gzip, chunked")]
    [InlineData("Transfer-Encoding: chunked, gzip")]
    [InlineData("Transfer-Encoding: chunked, chunked")]
    [InlineData("Transfer-Encoding: chunked;q=1")]
    [InlineData("Transfer-Encoding: \"chunked\"")]
    [InlineData("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked")]
    [InlineData("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked")]
    [InlineData("Transfer-Encoding:")]
    [InlineData("Transfer-Encoding: xchunked")]
    public void Transfer_codings_other_than_exactly_chunked_are_refused(string te)
    {
        Assert.Equal(ParseError.UnsupportedTransferEncoding, Heads.Request(Post + te + "\r\n\r\n"));
        Assert.Equal(ParseError.UnsupportedTransferEncoding, Heads.Response("HTTP/1.1 200 OK\r\n" + te + "\r\n\r\n", out _));
    }

    [Fact]
    public void Chunked_is_matched_case_insensitively_and_refused_on_HTTP_1_0()
    {
        Assert.Equal(ParseError.None, Heads.Request(Post + "Transfer-Encoding: Chunked \r\n\r\n", out var h));
        Assert.True(h.Chunked);
        Assert.Equal(ParseError.UnsupportedTransferEncoding, Heads.Request("POST http://a.test/ HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"));
    }

    [Theory]
    [InlineData("Content-Length: 5\r\nTransfer-Encoding: chunked")]
    [InlineData("Transfer-Encoding: chunked\r\nContent-Length: 5")]
    [InlineData("Transfer-Encoding: chunked\r\nContent-Length: 0")]
    public void Content_Length_with_Transfer_Encoding_is_refused_both_ways(string headers)
    {
        Assert.Equal(ParseError.ContentLengthWithTransferEncoding, Heads.Request(Post + headers + "\r\n\r\n"));
        Assert.Equal(ParseError.ContentLengthWithTransferEncoding, Heads.Response("HTTP/1.1 200 OK\r\n" + headers + "\r\n\r\n", out _));
    }

    [Theory]
    [InlineData("Content-Length: -1")]
    [InlineData("Content-Length: +5")]
    [InlineData("Content-Length: 0x5")]
    [InlineData("Content-Length: 5 5")]
    [InlineData("Content-Length: 5a")]
    [InlineData("Content-Length:")]
    [InlineData("Content-Length: 1234567890123456789")]
    public void Content_Length_must_be_digits_that_fit(string cl)
    {
        Assert.Equal(ParseError.BadContentLength, Heads.Request(Post + cl + "\r\n\r\n"));
    }

    [Theory]
    [InlineData(Get + "X: a\r\n b\r\n\r\n")]
    [InlineData(Get + "X: a\r\n\tb\r\n\r\n")]
    [InlineData("GET http://a.test/ HTTP/1.1\r\n Host: a.test\r\n\r\n")]
    [InlineData("GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\n Content-Length: 5\r\n\r\n")]
    public void Obs_fold_is_refused(string head) => Assert.Equal(ParseError.ObsFold, Heads.Request(head));

    [Theory]
    [InlineData("Content-Length : 5")]
    [InlineData("Content-Length\t: 5")]
    [InlineData("Transfer-Encoding : chunked")]
    [InlineData("X  : y")]
    public void Whitespace_before_the_colon_is_refused(string header) =>
        Assert.Equal(ParseError.WhitespaceBeforeColon, Heads.Request(Post + header + "\r\n\r\n"));

    [Theory]
    [InlineData(Get + "X: a\rb\r\n\r\n")]
    [InlineData(Get + "X: a\r\r\n\r\n")]
    [InlineData(Get + "X\rY: a\r\n\r\n")]
    [InlineData("GET http://a.test/\r HTTP/1.1\r\nHost: a.test\r\n\r\n")]
    [InlineData("GET\rhttp://a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n")]
    [InlineData("GET http://a.test/ HTTP/1.1\r\r\nHost: a.test\r\n\r\n")]
    public void A_bare_CR_is_refused_as_such(string head) => Assert.Equal(ParseError.BareCr, Heads.Request(head));

    [Theory]
    [InlineData(Get + "X: a\nY: b\r\n\r\n")]
    [InlineData(Get + "X: a\n\r\n")]
    [InlineData("GET http://a.test/ HTTP/1.1\nHost: a.test\r\n\r\n")]
    [InlineData(Get + "\n")]
    public void A_bare_LF_is_refused(string head) => Assert.Equal(ParseError.BareLf, Heads.Request(head));

    [Theory]
    [InlineData("\u0000")]
    [InlineData("\u0001")]
    [InlineData("\u001b")]
    [InlineData("\u007f")]
    [InlineData("\u000b")]
    [InlineData("\u000c")]
    public void Control_bytes_in_a_value_are_refused(string ctl)
    {
        Assert.Equal(ParseError.BadHeaderValue, Heads.Request(Get + "X: a" + ctl + "b\r\n\r\n"));
        Assert.Equal(ParseError.BadHeaderValue, Heads.Response("HTTP/1.1 200 OK\r\nX: " + ctl + "\r\n\r\n", out _));
    }

    [Theory]
    [InlineData("a\tb")]
    [InlineData("caf\u00e9")]
    [InlineData("\"quoted, with (comments)\"")]
    public void Tabs_and_obs_text_are_values(string value)
    {
        Assert.Equal(ParseError.None, Heads.Request(Get + "X: " + value + "\r\n\r\n", out var h));
        Assert.Equal(Heads.Latin1(value), h.Span(h.HeaderValues[1]).ToArray());
    }

    [Theory]
    [InlineData("X Y: a")]
    [InlineData("(x): a")]
    [InlineData("X@Y: a")]
    [InlineData("\"x\": a")]
    [InlineData("X/Y: a")]
    [InlineData("X[1]: a")]
    [InlineData("caf\u00e9: a")]
    [InlineData("X\u0000: a")]
    [InlineData(": a")]
    [InlineData("NoColonHere")]
    [InlineData("X{}: a")]
    public void Header_names_must_be_tokens(string header) =>
        Assert.Equal(ParseError.BadHeaderName, Heads.Request(Get + header + "\r\n\r\n"));

    [Theory]
    [InlineData("GET http://a.test/ HTTP/1.1\r\nHost: b.test\r\n\r\n")]
    [InlineData("GET http://a.test/ HTTP/1.1\r\nHost: a.test:8080\r\n\r\n")]
    [InlineData("GET http://a.test:8080/ HTTP/1.1\r\nHost: a.test\r\n\r\n")]
    [InlineData("GET http://a.test/ HTTP/1.1\r\nHost: a.test.\r\n\r\n")]
    [InlineData("GET http://[::1]/ HTTP/1.1\r\nHost: [::2]\r\n\r\n")]
    [InlineData("GET http://a.test/ HTTP/1.0\r\nHost: b.test\r\n\r\n")]
    public void An_absolute_target_and_a_disagreeing_Host_are_refused(string head) =>
        Assert.Equal(ParseError.HostMismatch, Heads.Request(head));

    public static TheoryData<string> InvalidHosts => new()
    {
        ".blocked.cg.test", "blocked..cg.test", "blocked.cg.test..", ".", "..", ".a.",
        new string('a', 64) + ".test", string.Join('.', Enumerable.Repeat(new string('a', 62), 4)) + ".xx",
        "127.1", "2130706433", "0x7f.0.0.1", "0177.0.0.1", "01.2.3.4", "1.2.3", "a.test@b.test", "a.test/x",
    };

    [Theory]
    [MemberData(nameof(InvalidHosts))]
    public void A_target_or_Host_that_is_not_a_host_name_is_bad_target(string host)
    {
        if (!host.Contains('/', StringComparison.Ordinal) && !host.Contains('@', StringComparison.Ordinal))
        {
            Assert.Equal(ParseError.BadTarget, Heads.Request($"CONNECT {host}:443 HTTP/1.1\r\n\r\n"));
            Assert.Equal(ParseError.BadTarget, Heads.Request($"GET http://{host}/ HTTP/1.1\r\nHost: {host}\r\n\r\n"));
            Assert.Equal(ParseError.BadTarget, Heads.Request($"GET http://{host}:8080/ HTTP/1.0\r\n\r\n"));
        }

        Assert.Equal(ParseError.BadTarget, Heads.Request($"GET http://a.test/ HTTP/1.1\r\nHost: {host}\r\n\r\n"));
    }

    [Theory]
    [InlineData("a.test")]
    [InlineData("a.test.")]
    [InlineData("localhost")]
    [InlineData("127.0.0.1")]
    [InlineData("0.0.0.0")]
    [InlineData("beef.cafe")]
    [InlineData("deadbeef")]
    [InlineData("1e100.net")]
    [InlineData("_srv.a-b.test")]
    public void Valid_names_and_canonical_addresses_pass(string host)
    {
        Assert.Equal(ParseError.None, Heads.Request($"CONNECT {host}:443 HTTP/1.1\r\n\r\n"));
        Assert.Equal(ParseError.None, Heads.Request($"GET http://{host}/ HTTP/1.1\r\nHost: {host}\r\n\r\n"));
        var longest = string.Join('.', Enumerable.Repeat(new string('a', 63), 3)) + "." + new string('b', 61);
        Assert.Equal(253, longest.Length);
        Assert.Equal(ParseError.None, Heads.Request($"CONNECT {longest}.:443 HTTP/1.1\r\n\r\n"));
    }

    [Fact]
    public void Checking_a_name_or_a_dotted_quad_allocates_nothing()
    {
        var heads = new[]
        {
            Heads.Latin1("GET http://127.0.0.1:8080/x HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"),
            Heads.Latin1("CONNECT api.example.org:443 HTTP/1.1\r\nHost: api.example.org:443\r\n\r\n"),
            Heads.Latin1("CONNECT beef.cafe:443 HTTP/1.1\r\n\r\n"),
        };
        var h = Heads.NewHead();
        var errors = 0;
        var allocated = Allocations.Least(() =>
        {
            foreach (var head in heads)
            {
                h.Reset();
                head.CopyTo(h.Buffer, 0);
                h.Length = head.Length;
                errors += (int)HttpHeadParser.ParseRequest(h);
            }
        });

        Assert.Equal((0, 0L), (errors, allocated));
    }

    [Theory]
    [InlineData("[::1]", true)]
    [InlineData("[::ffff:127.0.0.1]", true)]
    [InlineData("[1.2.3.4]", false)]
    [InlineData("[:::]", false)]
    [InlineData("[1::2::3]", false)]
    public void An_IPv6_literal_must_parse(string host, bool valid) =>
        Assert.Equal(valid ? ParseError.None : ParseError.BadTarget, Heads.Request($"CONNECT {host}:443 HTTP/1.1\r\n\r\n"));

    [Theory]
    [InlineData("Proxy-Authorization: Basic Ym9iOng=\r\nProxy-Authorization: Basic YWxpY2U6eA==", "duplicate_proxy_authorization")]
    [InlineData("Proxy-Authorization: Basic Ym9iOng=\r\nproxy-authorization: Basic Ym9iOng=", "duplicate_proxy_authorization")]
    [InlineData("Proxy-Authorization:\r\nProxy-Authorization: Basic YWxpY2U6eA==", "duplicate_proxy_authorization")]
    [InlineData("User-Agent: curl\r\nUser-Agent: friendly", "duplicate_user_agent")]
    public void A_header_the_decision_reads_once_may_appear_only_once(string headers, string reason)
    {
        Assert.Equal(reason, ParseErrors.Reason(Heads.Request(Get + headers + "\r\n\r\n")));
        Assert.Equal(reason, ParseErrors.Reason(Heads.Request("CONNECT a.test:443 HTTP/1.1\r\n" + headers + "\r\n\r\n")));
    }

    [Fact]
    public void An_origin_cannot_send_the_sidecar_s_headers()
    {
        Assert.Equal(ParseError.None, Heads.Response("HTTP/1.1 403 Forbidden (chronoguard: BLOCK domain_blocked)\r\nX-ChronoGuard-Decision: BLOCK\r\nx-chronoguard-audit-seq: 7\r\nX-ChronoGuardian: kept\r\nX-Other: kept\r\nContent-Length: 0\r\n\r\n", out var h));
        var destination = new byte[1024];
        var n = ResponseRewriter.Write(h, Heads.NewHead(), keepAlive: true, destination);
        var head = Encoding.ASCII.GetString(destination, 0, n);
        Assert.StartsWith("HTTP/1.1 403 Forbidden\r\n", head, StringComparison.Ordinal);
        Assert.DoesNotContain("chronoguard:", head, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("X-ChronoGuard-", head, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("X-ChronoGuardian: kept\r\n", head, StringComparison.Ordinal);
        Assert.Contains("X-Other: kept\r\n", head, StringComparison.Ordinal);

        Assert.Equal(ParseError.None, Heads.Response("HTTP/1.1 599 (chronoguard: DENY x)\r\nContent-Length: 0\r\n\r\n", out h));
        n = ResponseRewriter.Write(h, Heads.NewHead(), keepAlive: true, destination);
        Assert.StartsWith("HTTP/1.1 599 \r\n", Encoding.ASCII.GetString(destination, 0, n), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("GET http://a.test/ HTTP/1.1\r\nHost: A.TEST\r\n\r\n")]
    [InlineData("GET http://a.test/ HTTP/1.1\r\nHost: a.test:80\r\n\r\n")]
    [InlineData("GET http://a.test:80/ HTTP/1.1\r\nHost: a.test\r\n\r\n")]
    [InlineData("GET http://[::1]:81/ HTTP/1.1\r\nHost: [::1]:81\r\n\r\n")]
    [InlineData("GET http://a.test/ HTTP/1.0\r\n\r\n")]
    public void An_agreeing_Host_is_accepted(string head) => Assert.Equal(ParseError.None, Heads.Request(head));

    [Theory]
    [InlineData("GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\nHost: a.test\r\n\r\n", "duplicate_host")]
    [InlineData("GET http://a.test/ HTTP/1.1\r\n\r\n", "missing_host")]
    [InlineData("GET http://a.test/ HTTP/1.1\r\nHost:\r\n\r\n", "missing_host")]
    [InlineData("GET /p HTTP/1.1\r\nHost: a.test\r\n\r\n", "not_a_proxy_request")]
    [InlineData("GET https://a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n", "https_requires_connect")]
    [InlineData("GET http://u:p@a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n", "userinfo_in_target")]
    [InlineData("GET http://a.test/ HTTP/2.0\r\nHost: a.test\r\n\r\n", "bad_version")]
    [InlineData("G(T http://a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n", "bad_method")]
    [InlineData("GET  http://a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n", "bad_request_line")]
    [InlineData("\r\nGET http://a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n", "bad_request_line")]
    [InlineData("CONNECT a.test HTTP/1.1\r\n\r\n", "bad_target")]
    [InlineData("GET http://a.test/\u0000 HTTP/1.1\r\nHost: a.test\r\n\r\n", "bad_target")]
    public void Other_bad_heads_keep_their_reasons(string head, string reason) => Assert.Equal(reason, ParseErrors.Reason(Heads.Request(head)));

    [Fact]
    public void Reading_and_parsing_a_head_allocates_nothing()
    {
        var request = Segments.Split(Heads.Latin1(Post + "Connection: keep-alive, X-A\r\nX-A: 1\r\nContent-Length: 5\r\n\r\nhello"), 20, 60);
        var refused = Segments.Split(Heads.Latin1(Post + "Connection: Content-Length\r\n\r\n"), 30);
        var response = Segments.Split(Heads.Latin1("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX: y\r\n\r\n"), 9);
        var h = Heads.NewHead();
        var results = (HeadStatus.Error, ParseError.None, ParseError.None, ParseError.None);
        var allocated = Allocations.Least(() =>
        {
            // No assertion in here: the assertion library allocates.
            h.Reset();
            results.Item1 = HeadReader.TryRead(request, h, out _, out _);
            results.Item2 = HttpHeadParser.ParseRequest(h);
            h.Reset();
            HeadReader.TryRead(refused, h, out _, out _);
            results.Item3 = HttpHeadParser.ParseRequest(h);
            h.Reset();
            HeadReader.TryRead(response, h, out _, out _);
            results.Item4 = HttpHeadParser.ParseResponse(h);
        });

        Assert.Equal((HeadStatus.Complete, ParseError.None, ParseError.FramingHeaderInConnection, ParseError.None), results);
        Assert.Equal(0, allocated);
    }

    private static string RewriteRequest(HttpHead h)
    {
        var buffer = new byte[8192];
        var n = RequestRewriter.Write(h, buffer);
        return Encoding.Latin1.GetString(buffer, 0, n);
    }

    private static int Count(string haystack, string needle)
    {
        var count = 0;
        for (var i = haystack.IndexOf(needle, StringComparison.Ordinal); i >= 0; i = haystack.IndexOf(needle, i + 1, StringComparison.Ordinal))
        {
            count++;
        }

        return count;
    }
}
