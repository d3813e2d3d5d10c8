using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Text;
using ChronoGuard.Http;

namespace ChronoGuard.Tests.Http;

public sealed class ResponseWriterTests
{
    public static TheoryData<int, string, string, string> Refusals => new()
    {
        { 400, "Bad Request", "DENY", "framing_header_in_connection" },
        { 403, "Forbidden", "BLOCK", "domain_blocked" },
        { 403, "Forbidden", "POLICY_VIOLATION", "credential_required" },
        { 407, "Proxy Authentication Required", "DENY", "auth_required" },
        { 408, "Request Timeout", "DENY", "header_timeout" },
        { 429, "Too Many Requests", "RATE_LIMITED", "agent_rate" },
        { 431, "Request Header Fields Too Large", "DENY", "head_too_large" },
        { 500, "Internal Server Error", "DENY", "internal_error" },
        { 502, "Bad Gateway", "ALLOW", "bad_upstream_response" },
        { 503, "Service Unavailable", "DENY", "audit_unavailable" },
        { 504, "Gateway Timeout", "ALLOW", "upstream_timeout" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public void Every_refusal_names_its_decision_and_reason_in_the_status_line_a_header_and_the_body(int status, string phrase, string decision, string reason)
    {
        var text = Write(new Refusal(status, decision, reason) { AuditSeq = 42 });
        var (statusLine, headers, body) = Split(text);
        Assert.Equal($"HTTP/1.1 {status} {phrase} (chronoguard: {decision} {reason})", statusLine);
        Assert.Equal(decision, headers["X-ChronoGuard-Decision"]);
        Assert.Equal(reason, headers["X-ChronoGuard-Reason"]);
        Assert.Equal("42", headers["X-ChronoGuard-Audit-Seq"]);
        Assert.Equal("close", headers["Connection"]);
        Assert.Equal($"{status} {phrase}: {decision} {reason}\n", body);
        Assert.Equal(Encoding.ASCII.GetByteCount(body).ToString(System.Globalization.CultureInfo.InvariantCulture), headers["Content-Length"]);
        AssertOurParserAccepts(text, status);
    }

    [Fact]
    public void Challenges_and_retry_hints_are_kept_beside_the_reason()
    {
        var challenge = Split(Write(new Refusal(407, "DENY", "auth_required") { ChallengeBasic = true })).Headers;
        Assert.Equal("Basic realm=\"chronoguard\"", challenge["Proxy-Authenticate"]);
        Assert.Equal("auth_required", challenge["X-ChronoGuard-Reason"]);
        Assert.False(challenge.ContainsKey("X-ChronoGuard-Audit-Seq"));

        var at = new DateTimeOffset(2026, 12, 1, 18, 30, 0, TimeSpan.FromHours(1));
        var (line, retry, _) = Split(Write(new Refusal(429, "TIME_RESTRICTED", "window_closed") { RetryAfterSeconds = 90, RetryAt = at, AuditSeq = 7 }));
        Assert.Equal("HTTP/1.1 429 Too Many Requests (chronoguard: TIME_RESTRICTED window_closed)", line);
        Assert.Equal("90", retry["Retry-After"]);
        Assert.Equal("2026-12-01T17:30:00Z", retry["X-ChronoGuard-Retry-At"]);
        Assert.Equal("window_closed", retry["X-ChronoGuard-Reason"]);
    }

    [Fact]
    public void Text_that_could_split_the_head_is_neutralised_and_the_worst_case_fits()
    {
        var hostile = "x)\r\nSet-Cookie: a=b\r\n\r\n(caf\u00e9\u0000 " + new string('r', 500);
        var refusal = new Refusal(431, "DECISION_" + new string('D', 100), hostile)
        {
            AuditSeq = long.MaxValue,
            RetryAfterSeconds = long.MaxValue,
            RetryAt = DateTimeOffset.MaxValue,
            ChallengeBasic = true,
        };
        var buffer = new byte[ResponseWriter.MaxRefusalBytes];
        var n = ResponseWriter.WriteRefusal(buffer, refusal);
        var text = Encoding.Latin1.GetString(buffer, 0, n);
        var (line, headers, body) = Split(text);
        Assert.StartsWith("HTTP/1.1 431 Request Header Fields Too Large (chronoguard: DECISION_DDD", line, StringComparison.Ordinal);
        Assert.EndsWith(")", line, StringComparison.Ordinal);
        Assert.Equal((1, 1), (line.Count(c => c == '('), line.Count(c => c == ')')));
        Assert.False(headers.ContainsKey("Set-Cookie"));
        Assert.Matches("^[\\x21-\\x7e]+$", headers["X-ChronoGuard-Reason"]);
        Assert.EndsWith("\n", body, StringComparison.Ordinal);
        AssertOurParserAccepts(text, 431);
    }

    [Fact]
    public async Task HttpClient_reads_such_status_lines_directly_through_a_proxy_and_over_CONNECT()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var refusal = new Refusal(403, "BLOCK", "domain_blocked");
        var requests = new List<string>();
        var server = Task.Run(async () =>
        {
            while (!cts.IsCancellationRequested)
            {
                using var client = await listener.AcceptTcpClientAsync(cts.Token);
                var stream = client.GetStream();
                var head = await ReadHeadAsync(stream, cts.Token);
                lock (requests)
                {
                    requests.Add(head);
                }

                var buffer = new byte[ResponseWriter.MaxRefusalBytes];
                Refusal current;
                lock (requests)
                {
                    current = refusal;
                }

                var n = ResponseWriter.WriteRefusal(buffer, current);
                await stream.WriteAsync(buffer.AsMemory(0, n), cts.Token);
                client.Client.Shutdown(SocketShutdown.Send);
            }
        });

        using (var direct = new HttpClient(new SocketsHttpHandler { UseProxy = false }))
        {
            foreach (var row in Refusals)
            {
                var (status, phrase, decision, reason) = ((int)row[0], (string)row[1], (string)row[2], (string)row[3]);
                lock (requests)
                {
                    refusal = new Refusal(status, decision, reason) { AuditSeq = 3, ChallengeBasic = status == 407, RetryAfterSeconds = status == 429 ? 5 : -1 };
                }

                using var response = await direct.GetAsync(new Uri($"http://127.0.0.1:{port}/"), cts.Token);
                Assert.Equal(status, (int)response.StatusCode);
                Assert.Equal($"{phrase} (chronoguard: {decision} {reason})", response.ReasonPhrase);
                Assert.Equal(reason, Assert.Single(response.Headers.GetValues("X-ChronoGuard-Reason")));
                Assert.Equal($"{status} {phrase}: {decision} {reason}\n", await response.Content.ReadAsStringAsync(cts.Token));
            }
        }

        lock (requests)
        {
            refusal = new Refusal(403, "BLOCK", "domain_blocked") { AuditSeq = 9 };
        }

        using var proxied = new HttpClient(new SocketsHttpHandler { UseProxy = true, Proxy = new WebProxy(new Uri($"http://127.0.0.1:{port}/")) });
        using (var plain = await proxied.GetAsync(new Uri("http://blocked.test/x"), cts.Token))
        {
            Assert.Equal(HttpStatusCode.Forbidden, plain.StatusCode);
            Assert.Equal("Forbidden (chronoguard: BLOCK domain_blocked)", plain.ReasonPhrase);
        }

        var tunnel = await Assert.ThrowsAsync<HttpRequestException>(() => proxied.GetAsync(new Uri("https://blocked.test/x"), cts.Token));
        Assert.Contains("403", tunnel.Message, StringComparison.Ordinal);
        lock (requests)
        {
            Assert.StartsWith("GET http://blocked.test/x HTTP/1.1", requests[^2], StringComparison.Ordinal);
            Assert.StartsWith("CONNECT blocked.test:443 HTTP/1.1", requests[^1], StringComparison.Ordinal);
        }

        await cts.CancelAsync();
        listener.Stop();
        try
        {
            await server;
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    private static string Write(in Refusal refusal)
    {
        var buffer = new byte[ResponseWriter.MaxRefusalBytes];
        return Encoding.Latin1.GetString(buffer, 0, ResponseWriter.WriteRefusal(buffer, refusal));
    }

    private static (string StatusLine, Dictionary<string, string> Headers, string Body) Split(string response)
    {
        var end = response.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        Assert.True(end > 0, "no end of head");
        var lines = response[..end].Split("\r\n");
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var line in lines.Skip(1))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            Assert.True(headers.TryAdd(line[..colon], line[(colon + 1)..].Trim()), $"repeated header {line}");
        }

        return (lines[0], headers, response[(end + 4)..]);
    }

    private static void AssertOurParserAccepts(string response, int status)
    {
        var h = new HttpHead(4096, 32);
        h.Reset();
        var bytes = Encoding.Latin1.GetBytes(response);
        Assert.Equal(HeadStatus.Complete, HeadReader.TryRead(new ReadOnlySequence<byte>(bytes), h, out _, out _));
        Assert.Equal(ParseError.None, HttpHeadParser.ParseResponse(h));
        Assert.Equal(status, h.StatusCode);
        Assert.Equal(bytes.Length - h.Length, h.ContentLength);
    }

    private static async Task<string> ReadHeadAsync(NetworkStream stream, CancellationToken token)
    {
        var buffer = new byte[8192];
        var have = 0;
        while (buffer.AsSpan(0, have).IndexOf("\r\n\r\n"u8) < 0)
        {
            var n = await stream.ReadAsync(buffer.AsMemory(have), token);
            if (n == 0)
            {
                break;
            }

            have += n;
        }

        return Encoding.Latin1.GetString(buffer, 0, have);
    }
}
