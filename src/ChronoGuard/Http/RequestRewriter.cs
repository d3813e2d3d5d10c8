namespace ChronoGuard.Http;

/// <summary>
/// Writes the head a forwarded request carries upstream: origin-form target, only end-to-end
/// headers, one Host, and our Via. The result is at most the original head plus a fixed slack.
/// </summary>
internal static class RequestRewriter
{
    public static int Write(HttpHead h, Span<byte> destination)
    {
        var w = new HeadWriter(destination);
        w.Append(h.Span(h.Method));
        w.Append(" "u8);
        if (h.TargetPath.IsEmpty)
        {
            w.Append("/"u8);
        }
        else
        {
            var path = h.Span(h.TargetPath);
            if (path[0] == (byte)'?')
            {
                w.Append("/"u8);
            }

            w.Append(path);
        }

        // A 1.0 client cannot read a chunked response, so its request goes upstream as 1.0 too.
        w.Append(h.VersionMinor >= 1 ? " HTTP/1.1\r\nHost: "u8 : " HTTP/1.0\r\nHost: "u8);
        if (!h.HostHeader.IsEmpty)
        {
            w.Append(h.Span(h.HostHeader));
        }
        else
        {
            AppendAuthority(ref w, h);
        }

        w.Append("\r\n"u8);
        for (var i = 0; i < h.HeaderCount; i++)
        {
            if (i == h.HostIndex || !h.IsForwarded(i))
            {
                continue;
            }

            w.Header(h.Span(h.HeaderNames[i]), h.Span(h.HeaderValues[i]));
        }

        w.Framing(h);
        w.Append("Via: 1.1 chronoguard\r\n\r\n"u8);
        return w.Length;
    }

    private static void AppendAuthority(ref HeadWriter w, HttpHead h)
    {
        var host = h.Span(h.TargetHost);
        var v6 = host.IndexOf((byte)':') >= 0;
        if (v6)
        {
            w.Append("["u8);
        }

        w.Append(host);
        if (v6)
        {
            w.Append("]"u8);
        }

        if (h.TargetPort != 80)
        {
            w.Append(":"u8);
            w.Append(h.TargetPort);
        }
    }
}
