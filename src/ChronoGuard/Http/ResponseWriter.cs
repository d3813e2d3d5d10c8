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
    /// Writes a complete refusal (headers and a short text body) that ends with the connection. The
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
        w.Append(")\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nX-ChronoGuard-Decision: "u8);
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

    public static ReadOnlySpan<byte> ReasonPhrase(int status) => status switch
    {
        200 => "OK"u8,
        400 => "Bad Request"u8,
        403 => "Forbidden"u8,
        404 => "Not Found"u8,
        405 => "Method Not Allowed"u8,
        407 => "Proxy Authentication Required"u8,
        408 => "Request Timeout"u8,
        429 => "Too Many Requests"u8,
        431 => "Request Header Fields Too Large"u8,
        500 => "Internal Server Error"u8,
        502 => "Bad Gateway"u8,
        503 => "Service Unavailable"u8,
        504 => "Gateway Timeout"u8,
        _ => "Error"u8,
    };
}
