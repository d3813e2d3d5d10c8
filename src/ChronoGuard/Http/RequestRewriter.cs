namespace ChronoGuard.Http;

/// <summary>
/// Writes the head a forwarded request carries upstream: origin-form target, only end-to-end
/// headers, one Host, and our Via. The result is at most the original head plus a fixed slack (plus
/// the injected header, when there is one).
/// </summary>
internal static class RequestRewriter
{
    /// <param name="injectName">
    /// A header whose whole value becomes <paramref name="injectValue"/> (credential injection, SPEC §7):
    /// written once, where the request had it first (its other copies dropped), or at the end if it had
    /// none. Headers that frame, route or belong to this hop are never replaced (<see cref="MayInject"/>).
    /// </param>
    /// <param name="upgrade">Relay the request's protocol upgrade (an inspected exchange, SPEC §7: <c>101</c> becomes a relay).</param>
    public static int Write(HttpHead h, Span<byte> destination, scoped ReadOnlySpan<byte> injectName = default, scoped ReadOnlySpan<byte> injectValue = default, bool upgrade = false)
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
        var inject = !injectName.IsEmpty && MayInject(injectName);
        for (var i = 0; i < h.HeaderCount; i++)
        {
            if (i == h.HostIndex || !h.IsForwarded(i))
            {
                continue;
            }

            var name = h.Span(h.HeaderNames[i]);
            if (!injectName.IsEmpty && System.Text.Ascii.EqualsIgnoreCase(name, injectName))
            {
                if (inject)
                {
                    w.Header(injectName, injectValue);
                    inject = false;
                }

                continue;
            }

            w.Header(name, h.Span(h.HeaderValues[i]));
        }

        if (inject)
        {
            w.Header(injectName, injectValue);
        }

        if (upgrade)
        {
            w.Append("Connection: upgrade\r\n"u8);
            w.Header("Upgrade"u8, h.Span(h.Upgrade));
        }

        w.Framing(h);
        w.Append("Via: 1.1 chronoguard\r\n\r\n"u8);
        return w.Length;
    }

    /// <summary>
    /// Whether a header may carry an injected value: not one the rewriter writes itself or drops on this
    /// hop (Host, framing, Connection and its kin, Proxy-*), whose replacement could change how the
    /// request is routed or cut.
    /// </summary>
    public static bool MayInject(ReadOnlySpan<byte> name)
    {
        if (name.Length > 6 && System.Text.Ascii.EqualsIgnoreCase(name[..6], "proxy-"u8))
        {
            return false;
        }

        return !(System.Text.Ascii.EqualsIgnoreCase(name, "host"u8)
            || System.Text.Ascii.EqualsIgnoreCase(name, "content-length"u8)
            || System.Text.Ascii.EqualsIgnoreCase(name, "transfer-encoding"u8)
            || System.Text.Ascii.EqualsIgnoreCase(name, "connection"u8)
            || System.Text.Ascii.EqualsIgnoreCase(name, "keep-alive"u8)
            || System.Text.Ascii.EqualsIgnoreCase(name, "te"u8)
            || System.Text.Ascii.EqualsIgnoreCase(name, "trailer"u8)
            || System.Text.Ascii.EqualsIgnoreCase(name, "upgrade"u8)
            || System.Text.Ascii.EqualsIgnoreCase(name, "via"u8));
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
