namespace ChronoGuard.Http;

/// <summary>The proxy's own responses: refusals and the CONNECT acknowledgement.</summary>
internal static class ResponseWriter
{
    public const int MaxRefusalBytes = 1024;

    public static ReadOnlyMemory<byte> ConnectEstablishedBytes { get; } = "HTTP/1.1 200 Connection established\r\n\r\n"u8.ToArray();

    // Bounds that keep the worst refusal (every optional header, both strings at their bound, in the
    // status line, a header and the body) within MaxRefusalBytes; real values are far shorter.
    private const int MaxDecisionChars = 24;
    private const int MaxReasonChars = 96;

    /// <summary>
    /// Writes a complete refusal (headers and a short text body) that ends with the connection, unless
    /// it says it keeps it (<see cref="Refusal.KeepOpen"/>). The
    /// decision and reason are in the status line too: over CONNECT, clients show only that line.
    /// </summary>
    public static int WriteRefusal(Span<byte> destination, in Refusal r)
    {
        var w = new HeadWriter(destination);
        var phrase = ReasonPhrase(r.Status);
        w.Append("HTTP/1.1 "u8);
        w.Append(r.Status);
        w.Append(" "u8);
        w.Append(phrase);
        w.Append(" (chronoguard: "u8);
        AppendDecisionAndReason(ref w, r);
        w.Append(r.KeepOpen ? ")\r\nContent-Type: text/plain; charset=utf-8\r\nX-ChronoGuard-Decision: "u8 : ")\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nX-ChronoGuard-Decision: "u8);
        w.AppendVisible(r.Decision, MaxDecisionChars);
        w.Append("\r\nX-ChronoGuard-Reason: "u8);
        w.AppendVisible(r.Reason, MaxReasonChars);
        w.Append("\r\n"u8);
        if (r.AuditSeq >= 0)
        {
            w.Append("X-ChronoGuard-Audit-Seq: "u8);
            w.Append(r.AuditSeq);
            w.Append("\r\n"u8);
        }

        if (r.RetryAfterSeconds >= 0)
        {
            w.Append("Retry-After: "u8);
            w.Append(r.RetryAfterSeconds);
            w.Append("\r\n"u8);
        }

        if (r.RetryAt is { } at)
        {
            Span<char> iso = stackalloc char[32];
            at.UtcDateTime.TryFormat(iso, out var n, "yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture);
            w.Append("X-ChronoGuard-Retry-At: "u8);
            Span<byte> isoBytes = stackalloc byte[32];
            for (var i = 0; i < n; i++)
            {
                isoBytes[i] = (byte)iso[i];
            }

            w.Append(isoBytes[..n]);
            w.Append("\r\n"u8);
        }

        if (r.ChallengeBasic)
        {
            w.Append("Proxy-Authenticate: Basic realm=\"chronoguard\"\r\n"u8);
        }

        // Body: "<status> <phrase>: <DECISION> <reason>\n"
        var bodyLength = 3 + 1 + phrase.Length + 2 + DecisionAndReasonLength(r) + 1;
        w.Append("Content-Length: "u8);
        w.Append(bodyLength);
        w.Append("\r\n\r\n"u8);
        w.Append(r.Status);
        w.Append(" "u8);
        w.Append(phrase);
        w.Append(": "u8);
        AppendDecisionAndReason(ref w, r);
        w.Append("\n"u8);
        return w.Length;
    }

    private static void AppendDecisionAndReason(ref HeadWriter w, in Refusal r)
    {
        w.AppendVisible(r.Decision, MaxDecisionChars);
        if (!string.IsNullOrEmpty(r.Reason))
        {
            w.Append(" "u8);
            w.AppendVisible(r.Reason, MaxReasonChars);
        }
    }

    private static int DecisionAndReasonLength(in Refusal r) =>
        Math.Min(r.Decision?.Length ?? 0, MaxDecisionChars) + (string.IsNullOrEmpty(r.Reason) ? 0 : 1 + Math.Min(r.Reason.Length, MaxReasonChars));

    /// <summary>The phrase of the proxy's own refusals.</summary>
    public static ReadOnlySpan<byte> ReasonPhrase(int status) => StandardPhrase(status) is { IsEmpty: false } phrase ? phrase : "Error"u8;

    /// <summary>
    /// RFC 9110 §15's phrase for a status code, empty for codes it does not define. Forwarded responses
    /// carry this instead of the origin's own phrase, which could imitate a refusal of ours.
    /// </summary>
    public static ReadOnlySpan<byte> StandardPhrase(int status) => status switch
    {
        100 => "Continue"u8,
        101 => "Switching Protocols"u8,
        103 => "Early Hints"u8,
        200 => "OK"u8,
        201 => "Created"u8,
        202 => "Accepted"u8,
        203 => "Non-Authoritative Information"u8,
        204 => "No Content"u8,
        205 => "Reset Content"u8,
        206 => "Partial Content"u8,
        300 => "Multiple Choices"u8,
        301 => "Moved Permanently"u8,
        302 => "Found"u8,
        303 => "See Other"u8,
        304 => "Not Modified"u8,
        305 => "Use Proxy"u8,
        307 => "Temporary Redirect"u8,
        308 => "Permanent Redirect"u8,
        400 => "Bad Request"u8,
        401 => "Unauthorized"u8,
        402 => "Payment Required"u8,
        403 => "Forbidden"u8,
        404 => "Not Found"u8,
        405 => "Method Not Allowed"u8,
        406 => "Not Acceptable"u8,
        407 => "Proxy Authentication Required"u8,
        408 => "Request Timeout"u8,
        409 => "Conflict"u8,
        410 => "Gone"u8,
        411 => "Length Required"u8,
        412 => "Precondition Failed"u8,
        413 => "Content Too Large"u8,
        414 => "URI Too Long"u8,
        415 => "Unsupported Media Type"u8,
        416 => "Range Not Satisfiable"u8,
        417 => "Expectation Failed"u8,
        421 => "Misdirected Request"u8,
        422 => "Unprocessable Content"u8,
        426 => "Upgrade Required"u8,
        428 => "Precondition Required"u8,
        429 => "Too Many Requests"u8,
        431 => "Request Header Fields Too Large"u8,
        451 => "Unavailable For Legal Reasons"u8,
        500 => "Internal Server Error"u8,
        501 => "Not Implemented"u8,
        502 => "Bad Gateway"u8,
        503 => "Service Unavailable"u8,
        504 => "Gateway Timeout"u8,
        505 => "HTTP Version Not Supported"u8,
        _ => default,
    };
}
