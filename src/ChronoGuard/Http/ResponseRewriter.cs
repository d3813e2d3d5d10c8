namespace ChronoGuard.Http;

/// <summary>
/// Writes the head relayed to the client: the origin's status code with the standard phrase (never the
/// origin's, which could imitate a "(chronoguard: …)" refusal), its end-to-end headers but no
/// <c>X-ChronoGuard-*</c> (the parser drops them), our framing.
/// </summary>
internal static class ResponseRewriter
{
    public static int Write(HttpHead response, HttpHead request, bool keepAlive, Span<byte> destination)
    {
        var w = new HeadWriter(destination);
        StatusAndHeaders(ref w, response);

        // An origin's "Connection: Content-Length" is honoured for nothing: the body is relayed by the
        // framing parsed here, so the same framing is what the client must be told (dropping it would
        // leave a keep-alive response the client cannot delimit; refusing would discard a response
        // whose request the origin has already executed).
        w.Framing(response);

        if (!keepAlive)
        {
            w.Append("Connection: close\r\n"u8);
        }
        else if (request.VersionMinor == 0)
        {
            w.Append("Connection: keep-alive\r\n"u8);
        }

        w.Append("Via: 1.1 chronoguard\r\n\r\n"u8);
        return w.Length;
    }

    /// <summary>An interim (1xx) response: status and end-to-end headers only, no framing of its own.</summary>
    public static int WriteInterim(HttpHead response, Span<byte> destination)
    {
        var w = new HeadWriter(destination);
        StatusAndHeaders(ref w, response);
        w.Append("\r\n"u8);
        return w.Length;
    }

    /// <summary>A <c>101 Switching Protocols</c> relayed to an inspected client: its headers, and the upgrade it agreed to.</summary>
    public static int WriteUpgrade(HttpHead response, Span<byte> destination)
    {
        var w = new HeadWriter(destination);
        StatusAndHeaders(ref w, response);
        w.Append("Connection: upgrade\r\n"u8);
        w.Header("Upgrade"u8, response.Span(response.Upgrade));
        w.Append("Via: 1.1 chronoguard\r\n\r\n"u8);
        return w.Length;
    }

    private static void StatusAndHeaders(ref HeadWriter w, HttpHead response)
    {
        w.Append("HTTP/1.1 "u8);
        w.Append(response.StatusCode);
        w.Append(" "u8);
        w.Append(ResponseWriter.StandardPhrase(response.StatusCode));
        w.Append("\r\n"u8);
        for (var i = 0; i < response.HeaderCount; i++)
        {
            if (response.IsForwarded(i))
            {
                w.Header(response.Span(response.HeaderNames[i]), response.Span(response.HeaderValues[i]));
            }
        }
    }
}
