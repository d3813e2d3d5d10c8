namespace ChronoGuard.Http;

/// <summary>Writes the head relayed to the client: the origin's status and end-to-end headers, our framing.</summary>
internal static class ResponseRewriter
{
    public static int Write(HttpHead response, HttpHead request, bool keepAlive, Span<byte> destination)
    {
        var w = new HeadWriter(destination);
        w.Append("HTTP/1.1 "u8);
        w.Append(response.Span(response.StatusLine)[9..]);
        w.Append("\r\n"u8);
        for (var i = 0; i < response.HeaderCount; i++)
        {
            if (response.IsForwarded(i))
            {
                w.Header(response.Span(response.HeaderNames[i]), response.Span(response.HeaderValues[i]));
            }
        }

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
}
