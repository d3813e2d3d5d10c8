using System.Buffers;
using System.Buffers.Text;
using System.Text;

namespace ChronoGuard.Http;

/// <summary>
/// Parses a complete head (found by <see cref="HeadReader"/>) in place: request line or status line,
/// then header lines, recording offsets. Strict where lenience enables smuggling: no obs-fold, no
/// whitespace before the colon, no bare CR, one Host, Content-Length and Transfer-Encoding never
/// together, only "chunked" as a transfer coding, one Content-Length in a request, and no Connection
/// option naming a framing field. Framing headers are marked dropped: the rewriters write them from
/// the parsed values, so no header rule can remove or duplicate what the body is cut by.
/// </summary>
internal static class HttpHeadParser
{
    // CTLs other than HTAB, and DEL: a CR here is a bare CR, a NUL is never legitimate.
    private static readonly SearchValues<byte> InvalidValueBytes = SearchValues.Create(
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 127]);

    // Request targets are visible ASCII only.
    private static readonly SearchValues<byte> TargetBytes = SearchValues.Create(
        "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~"u8);

    private static readonly SearchValues<byte> HostBytes =
        SearchValues.Create("-._0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"u8);

    private static readonly SearchValues<byte> Ipv6Bytes =
        SearchValues.Create(":.0123456789abcdefABCDEF"u8);

    /// <param name="originForm">
    /// A request inside an inspected TLS tunnel (SPEC §7): the target must be origin-form (a path), and
    /// the authority is the <c>Host</c> header's (required; without a port it is 443), which the caller
    /// holds against the tunnel's host. Otherwise a proxy request: absolute-form or CONNECT.
    /// </param>
    public static ParseError ParseRequest(HttpHead h, bool originForm = false)
    {
        var buf = h.Buffer;
        var s = buf.AsSpan(0, h.Length);
        // Lines end at CRLF only: a CR elsewhere stays in the line, where the byte checks refuse it.
        var eol = s.IndexOf("\r\n"u8);
        var line = s[..eol];
        if (line.IndexOf((byte)'\r') >= 0)
        {
            return ParseError.BareCr;
        }

        var sp1 = line.IndexOf((byte)' ');
        if (sp1 <= 0)
        {
            return ParseError.BadRequestLine;
        }

        var method = line[..sp1];
        if (method.IndexOfAnyExcept(HttpChars.TChars) >= 0)
        {
            return ParseError.BadMethod;
        }

        var rest = line[(sp1 + 1)..];
        var sp2 = rest.IndexOf((byte)' ');
        if (sp2 <= 0)
        {
            return ParseError.BadRequestLine;
        }

        var target = rest[..sp2];
        var version = rest[(sp2 + 1)..];
        if (!TryParseVersion(version, out h.VersionMinor))
        {
            return ParseError.BadVersion;
        }

        if (target.IndexOfAnyExcept(TargetBytes) >= 0)
        {
            return ParseError.BadTarget;
        }

        h.Method = new Seg(0, sp1);
        h.Target = new Seg(sp1 + 1, sp2);
        h.IsConnect = method.SequenceEqual("CONNECT"u8);
        h.IsHead = method.SequenceEqual("HEAD"u8);

        var err = originForm ? ParseOriginTarget(h, target, h.Target.Start)
            : h.IsConnect ? ParseConnectTarget(h, target, h.Target.Start)
            : ParseAbsoluteTarget(h, target, h.Target.Start);
        if (err != ParseError.None)
        {
            return err;
        }

        err = ParseHeaders(h, eol + 2, isRequest: true);
        if (err != ParseError.None)
        {
            return err;
        }

        if (h.HasTransferEncoding && h.VersionMinor == 0)
        {
            return ParseError.UnsupportedTransferEncoding;
        }

        if (originForm)
        {
            if (h.HostHeader.IsEmpty)
            {
                return ParseError.MissingHost;
            }

            return TryParseAuthority(h.Span(h.HostHeader), h.HostHeader.Start, portRequired: false, defaultPort: 443, out h.TargetHost, out h.TargetPort)
                ? ParseError.None
                : ParseError.BadTarget;
        }

        if (!h.IsConnect)
        {
            if (h.HostHeader.IsEmpty)
            {
                if (h.VersionMinor >= 1)
                {
                    return ParseError.MissingHost;
                }
            }
            else if (HostAgrees(h) is var hostError and not ParseError.None)
            {
                return hostError;
            }
        }

        return ParseError.None;
    }

    public static ParseError ParseResponse(HttpHead h)
    {
        var s = h.Buffer.AsSpan(0, h.Length);
        var eol = s.IndexOf("\r\n"u8);
        var line = s[..eol];
        // "HTTP/1.x NNN[ reason]"
        if (line.Length < 12 || !TryParseVersion(line[..8], out h.VersionMinor) || line[8] != (byte)' ')
        {
            return ParseError.BadStatusLine;
        }

        var code = line.Slice(9, 3);
        if (!IsDigit(code[0]) || !IsDigit(code[1]) || !IsDigit(code[2]) || (line.Length > 12 && line[12] != (byte)' '))
        {
            return ParseError.BadStatusLine;
        }

        if (line.IndexOfAny(InvalidValueBytes) >= 0)
        {
            return ParseError.BadStatusLine;
        }

        h.StatusCode = ((code[0] - '0') * 100) + ((code[1] - '0') * 10) + (code[2] - '0');
        h.StatusLine = new Seg(0, eol);
        return ParseHeaders(h, eol + 2, isRequest: false);
    }

    private static bool TryParseVersion(ReadOnlySpan<byte> v, out int minor)
    {
        minor = 1;
        if (v.Length != 8 || !v[..7].SequenceEqual("HTTP/1."u8))
        {
            return false;
        }

        switch (v[7])
        {
            case (byte)'1':
                minor = 1;
                return true;
            case (byte)'0':
                minor = 0;
                return true;
            default:
                return false;
        }
    }

    private static ParseError ParseConnectTarget(HttpHead h, ReadOnlySpan<byte> target, int offset)
    {
        if (!TryParseAuthority(target, offset, portRequired: true, defaultPort: 0, out h.TargetHost, out h.TargetPort))
        {
            return ParseError.BadTarget;
        }

        return ParseError.None;
    }

    /// <summary>A path (and query) as an origin server receives it; CONNECT and the other forms are not requests to an origin.</summary>
    private static ParseError ParseOriginTarget(HttpHead h, ReadOnlySpan<byte> target, int offset)
    {
        if (h.IsConnect || target.IsEmpty || target[0] != (byte)'/')
        {
            return ParseError.NotOriginForm;
        }

        if (target.IndexOf((byte)'#') >= 0)
        {
            return ParseError.BadTarget;
        }

        h.TargetPath = new Seg(offset, target.Length);
        return NormalizePath(h);
    }

    private static ParseError ParseAbsoluteTarget(HttpHead h, ReadOnlySpan<byte> target, int offset)
    {
        if (target.Length > 0 && (target[0] == (byte)'/' || target[0] == (byte)'*'))
        {
            return ParseError.NotAProxyRequest;
        }

        if (target.Length >= 8 && Ascii.EqualsIgnoreCase(target[..8], "https://"u8))
        {
            return ParseError.HttpsRequiresConnect;
        }

        if (target.Length < 8 || !Ascii.EqualsIgnoreCase(target[..7], "http://"u8))
        {
            return ParseError.BadTarget;
        }

        if (target.IndexOf((byte)'#') >= 0)
        {
            return ParseError.BadTarget;
        }

        var afterScheme = target[7..];
        var end = afterScheme.IndexOfAny((byte)'/', (byte)'?');
        var authority = end < 0 ? afterScheme : afterScheme[..end];
        if (authority.IndexOf((byte)'@') >= 0)
        {
            return ParseError.UserInfoInTarget;
        }

        if (!TryParseAuthority(authority, offset + 7, portRequired: false, defaultPort: 80, out h.TargetHost, out h.TargetPort))
        {
            return ParseError.BadTarget;
        }

        h.TargetPath = end < 0 ? default : new Seg(offset + 7 + end, afterScheme.Length - end);
        return NormalizePath(h);
    }

    /// <summary>
    /// Rewrites the path in the head buffer to its normal form (it only shrinks), the query moved up
    /// behind it, so the rules, the record and the origin all see the one path that was decided. A
    /// path with parameters also gets its second reading, without them, in the head's side buffer.
    /// </summary>
    private static ParseError NormalizePath(HttpHead h)
    {
        var target = h.Buffer.AsSpan(h.TargetPath.Start, h.TargetPath.Length);
        var query = target.IndexOf((byte)'?');
        var pathLength = query < 0 ? target.Length : query;
        var path = target[..pathLength];
        h.PathLength = pathLength;
        if (pathLength == 0)
        {
            return ParseError.None;
        }

        if (path.IndexOf((byte)';') >= 0)
        {
            var err = PathNormalizer.Normalize(path, h.WithoutParametersBuffer(pathLength), dropParameters: true, out h.WithoutParametersLength);
            if (err != ParseError.None)
            {
                return err;
            }
        }
        else if (PathNormalizer.IsNormal(path))
        {
            return ParseError.None;
        }

        var error = PathNormalizer.Normalize(path, target, dropParameters: false, out var written);
        if (error != ParseError.None)
        {
            return error;
        }

        target[pathLength..].CopyTo(target[written..]);
        h.PathLength = written;
        h.TargetPath = new Seg(h.TargetPath.Start, written + target.Length - pathLength);
        return ParseError.None;
    }

    /// <summary>host:port, [v6]:port or a bare host; the host segment excludes IPv6 brackets.</summary>
    internal static bool TryParseAuthority(ReadOnlySpan<byte> a, int offset, bool portRequired, int defaultPort, out Seg host, out int port)
    {
        host = default;
        port = defaultPort;
        ReadOnlySpan<byte> portPart;
        if (a.Length > 0 && a[0] == (byte)'[')
        {
            var close = a.IndexOf((byte)']');
            if (close < 3 || a[1..close].IndexOfAnyExcept(Ipv6Bytes) >= 0 || !IsIpv6(a[1..close]))
            {
                return false;
            }

            host = new Seg(offset + 1, close - 1);
            var after = a[(close + 1)..];
            if (after.IsEmpty)
            {
                return !portRequired;
            }

            if (after[0] != (byte)':')
            {
                return false;
            }

            portPart = after[1..];
        }
        else
        {
            var colon = a.LastIndexOf((byte)':');
            var hostPart = colon < 0 ? a : a[..colon];
            if (!IsValidName(hostPart))
            {
                return false;
            }

            host = new Seg(offset, hostPart.Length);
            if (colon < 0)
            {
                return !portRequired;
            }

            portPart = a[(colon + 1)..];
        }

        return TryParsePort(portPart, out port);
    }

    /// <summary>
    /// A host name every later step reads the same way (SPEC §4 "Hosts"): labels of 1 to 63 bytes, at
    /// most 253 bytes without the one trailing dot allowed, and nothing that the resolver would take
    /// for an IPv4 address unless written as one (<c>127.1</c>, <c>2130706433</c> or <c>0x7f.0.0.1</c>
    /// would be dialed as an address that domain lists never compared).
    /// </summary>
    internal static bool IsValidName(ReadOnlySpan<byte> host)
    {
        if (host.IndexOfAnyExcept(HostBytes) >= 0)
        {
            return false;
        }

        var name = !host.IsEmpty && host[^1] == (byte)'.' ? host[..^1] : host;
        if (name.IsEmpty || name.Length > 253)
        {
            return false;
        }

        var label = 0;
        foreach (var c in name)
        {
            if (c != (byte)'.')
            {
                label++;
            }
            else if (label is 0 or > 63)
            {
                return false;
            }
            else
            {
                label = 0;
            }
        }

        if (label is 0 or > 63)
        {
            return false;
        }

        return name.IndexOfAnyExcept(NumericHostBytes) >= 0 || IsCanonicalIpv4(name);
    }

    // Every IPv4 spelling IPAddress and inet_aton accept (decimal, octal, hex parts) is made of these.
    private static readonly SearchValues<byte> NumericHostBytes = SearchValues.Create(".0123456789abcdefxABCDEFX"u8);

    /// <summary>
    /// Only names made of hex digits, dots and x get here: a dotted quad as written by IPAddress passes
    /// without a parse (no allocation for the common IP-literal target); the rest pay for one.
    /// </summary>
    private static bool IsCanonicalIpv4(ReadOnlySpan<byte> name)
    {
        if (IsDottedQuad(name))
        {
            return true;
        }

        Span<char> chars = stackalloc char[name.Length];
        Span<char> canonical = stackalloc char[16];
        Encoding.ASCII.GetChars(name, chars);
        if (!System.Net.IPAddress.TryParse(chars, out var address))
        {
            return true; // a name after all ("beef.cafe"), for DNS to answer
        }

        return address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork
            && address.TryFormat(canonical, out var n) && canonical[..n].SequenceEqual(chars);
    }

    /// <summary>Four decimal parts of 0 to 255 without leading zeros: the one spelling every reader agrees on.</summary>
    private static bool IsDottedQuad(ReadOnlySpan<byte> name)
    {
        var parts = 0;
        var value = 0;
        var digits = 0;
        for (var i = 0; i <= name.Length; i++)
        {
            if (i == name.Length || name[i] == (byte)'.')
            {
                if (digits == 0 || ++parts > 4)
                {
                    return false;
                }

                value = 0;
                digits = 0;
                continue;
            }

            var c = name[i];
            if (!IsDigit(c) || (digits == 1 && value == 0))
            {
                return false;
            }

            value = (value * 10) + (c - '0');
            if (++digits > 3 || value > 255)
            {
                return false;
            }
        }

        return parts == 4;
    }

    private static bool IsIpv6(ReadOnlySpan<byte> literal)
    {
        Span<char> chars = stackalloc char[literal.Length];
        Encoding.ASCII.GetChars(literal, chars);
        return System.Net.IPAddress.TryParse(chars, out var address) && address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6;
    }

    private static bool TryParsePort(ReadOnlySpan<byte> p, out int port)
    {
        port = 0;
        if (p.IsEmpty || p.Length > 5)
        {
            return false;
        }

        foreach (var c in p)
        {
            if (!IsDigit(c))
            {
                return false;
            }

            port = (port * 10) + (c - '0');
        }

        return port is > 0 and <= 65535;
    }

    private static ParseError ParseHeaders(HttpHead h, int pos, bool isRequest)
    {
        var buf = h.Buffer;
        var end = h.Length - 2; // the final CRLF
        var teSeen = false;
        while (pos < end)
        {
            var line = buf.AsSpan(pos, h.Length - pos);
            var eol = line.IndexOf("\r\n"u8);
            line = line[..eol];
            if (line.IsEmpty)
            {
                break;
            }

            if (line[0] is (byte)' ' or (byte)'\t')
            {
                return ParseError.ObsFold;
            }

            var colon = line.IndexOf((byte)':');
            if (colon <= 0)
            {
                return ParseError.BadHeaderName;
            }

            var name = line[..colon];
            var bad = name.IndexOfAnyExcept(HttpChars.TChars);
            if (bad >= 0)
            {
                return name[bad] == (byte)'\r' ? ParseError.BareCr
                    : name[^1] is (byte)' ' or (byte)'\t' ? ParseError.WhitespaceBeforeColon
                    : ParseError.BadHeaderName;
            }

            var valueStart = colon + 1;
            var value = line[valueStart..];
            var lead = value.Length - value.TrimStart(" \t"u8).Length;
            value = value.Trim(" \t"u8);
            bad = value.IndexOfAny(InvalidValueBytes);
            if (bad >= 0)
            {
                return value[bad] == (byte)'\r' ? ParseError.BareCr : ParseError.BadHeaderValue;
            }

            if (h.HeaderCount == h.HeaderNames.Length)
            {
                return ParseError.TooManyHeaders;
            }

            var i = h.HeaderCount++;
            var nameSeg = new Seg(pos, colon);
            var valueSeg = new Seg(pos + valueStart + lead, value.Length);
            h.HeaderNames[i] = nameSeg;
            h.HeaderValues[i] = valueSeg;
            h.HeaderDropped[i] = false;

            var err = ClassifyHeader(h, i, name, value, valueSeg, isRequest, ref teSeen);
            if (err != ParseError.None)
            {
                return err;
            }

            pos += eol + 2;
        }

        if (h.HasTransferEncoding && h.ContentLength >= 0)
        {
            return ParseError.ContentLengthWithTransferEncoding;
        }

        return ParseError.None;
    }

    private static ParseError ClassifyHeader(HttpHead h, int i, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, Seg valueSeg, bool isRequest, ref bool teSeen)
    {
        // Any Proxy-* header belongs to this hop (credentials above all) and never goes upstream.
        if (name.Length > 6 && Ascii.EqualsIgnoreCase(name[..6], "proxy-"u8))
        {
            h.HeaderDropped[i] = true;
            if (isRequest && Ascii.EqualsIgnoreCase(name, "proxy-authorization"u8))
            {
                if (h.HasProxyAuthorization)
                {
                    return ParseError.DuplicateProxyAuthorization;
                }

                h.HasProxyAuthorization = true;
                h.ProxyAuthorization = valueSeg;
            }
            else if (Ascii.EqualsIgnoreCase(name, "proxy-connection"u8))
            {
                return ParseConnection(h, value, valueSeg.Start, recordTokens: false, isRequest);
            }

            return ParseError.None;
        }

        // Only the sidecar's own refusals carry X-ChronoGuard-*: an origin's would pass for one.
        if (!isRequest && name.Length > 14 && Ascii.EqualsIgnoreCase(name[..14], "x-chronoguard-"u8))
        {
            h.HeaderDropped[i] = true;
            return ParseError.None;
        }

        switch (name.Length)
        {
            case 2 when Ascii.EqualsIgnoreCase(name, "te"u8):
                h.HeaderDropped[i] = true;
                break;
            case 4 when Ascii.EqualsIgnoreCase(name, "host"u8):
                if (!isRequest)
                {
                    break;
                }

                if (!h.HostHeader.IsEmpty)
                {
                    return ParseError.DuplicateHost;
                }

                if (value.IsEmpty)
                {
                    return ParseError.MissingHost;
                }

                h.HostHeader = valueSeg;
                h.HostIndex = i;
                break;
            case 6 when Ascii.EqualsIgnoreCase(name, "expect"u8):
                h.ExpectContinue = Ascii.EqualsIgnoreCase(value, "100-continue"u8);
                break;
            case 7 when Ascii.EqualsIgnoreCase(name, "trailer"u8):
                h.HeaderDropped[i] = true;
                break;
            case 7 when Ascii.EqualsIgnoreCase(name, "upgrade"u8):
                // Protocol upgrades over a forwarded request are not relayed (clients use CONNECT); only
                // an inspected exchange writes it again (RequestRewriter, ResponseRewriter.WriteUpgrade).
                h.HeaderDropped[i] = true;
                if (h.Upgrade.Length == 0)
                {
                    h.Upgrade = valueSeg;
                }

                break;
            case 10 when Ascii.EqualsIgnoreCase(name, "connection"u8):
                h.HeaderDropped[i] = true;
                return ParseConnection(h, value, valueSeg.Start, recordTokens: true, isRequest);
            case 10 when Ascii.EqualsIgnoreCase(name, "keep-alive"u8):
                h.HeaderDropped[i] = true;
                break;
            case 10 when Ascii.EqualsIgnoreCase(name, "user-agent"u8):
                if (!isRequest)
                {
                    break;
                }

                if (h.HasUserAgent)
                {
                    return ParseError.DuplicateUserAgent;
                }

                h.HasUserAgent = true;
                h.UserAgent = valueSeg;
                break;
            case 14 when Ascii.EqualsIgnoreCase(name, "content-length"u8):
                // Framing is written by the rewriters from the parsed value, never copied: nothing a
                // header says (a Connection token, a duplicate) can then change how the body is cut.
                h.HeaderDropped[i] = true;
                return ParseContentLength(h, value, isRequest);
            case 17 when Ascii.EqualsIgnoreCase(name, "transfer-encoding"u8):
                h.HeaderDropped[i] = true;
                if (teSeen || !Ascii.EqualsIgnoreCase(value, "chunked"u8))
                {
                    return ParseError.UnsupportedTransferEncoding;
                }

                teSeen = true;
                h.HasTransferEncoding = true;
                h.Chunked = true;
                break;
        }

        return ParseError.None;
    }

    private static ParseError ParseContentLength(HttpHead h, ReadOnlySpan<byte> value, bool isRequest)
    {
        // RFC 9112 §6.3 lets a recipient refuse any repetition; a request that repeats it (as two headers
        // or as "5, 5") is refused, as Kestrel does, because the agent controls it and has no reason to.
        // An origin's identical repetitions are tolerated (RFC 9110 §8.6) and leave as one header.
        if (isRequest && (h.ContentLength >= 0 || value.IndexOf((byte)',') >= 0))
        {
            return ParseError.DuplicateContentLength;
        }

        while (true)
        {
            var comma = value.IndexOf((byte)',');
            var item = (comma < 0 ? value : value[..comma]).Trim(" \t"u8);
            if (item.IsEmpty || item.Length > 18 || item.IndexOfAnyExceptInRange((byte)'0', (byte)'9') >= 0
                || !Utf8Parser.TryParse(item, out long n, out var consumed) || consumed != item.Length)
            {
                return ParseError.BadContentLength;
            }

            if (h.ContentLength >= 0 && h.ContentLength != n)
            {
                return ParseError.DuplicateContentLength;
            }

            h.ContentLength = n;
            if (comma < 0)
            {
                return ParseError.None;
            }

            value = value[(comma + 1)..];
        }
    }

    private static ParseError ParseConnection(HttpHead h, ReadOnlySpan<byte> value, int valueStart, bool recordTokens, bool isRequest)
    {
        var offset = 0;
        while (offset <= value.Length)
        {
            var rest = value[offset..];
            var comma = rest.IndexOf((byte)',');
            var raw = comma < 0 ? rest : rest[..comma];
            var lead = raw.Length - raw.TrimStart(" \t"u8).Length;
            var token = raw.Trim(" \t"u8);
            if (!token.IsEmpty)
            {
                if (token.IndexOfAnyExcept(HttpChars.TChars) >= 0)
                {
                    return ParseError.BadHeaderValue;
                }

                if (isRequest && IsFramingField(token))
                {
                    // Hop-by-hop removal must never take message framing with it: the proxy would cut
                    // the body by a length the origin no longer sees (request smuggling).
                    return ParseError.FramingHeaderInConnection;
                }

                if (Ascii.EqualsIgnoreCase(token, "close"u8))
                {
                    h.ConnectionClose = true;
                }
                else if (Ascii.EqualsIgnoreCase(token, "keep-alive"u8))
                {
                    h.ConnectionKeepAlive = true;
                }
                else if (recordTokens && Ascii.EqualsIgnoreCase(token, "upgrade"u8))
                {
                    // Recorded as a token too: the Upgrade header stays dropped unless written again.
                    h.ConnectionUpgrade = true;
                    if (h.ConnectionTokenCount == HttpHead.MaxConnectionTokens)
                    {
                        return ParseError.BadHeaderValue;
                    }

                    h.ConnectionTokens[h.ConnectionTokenCount++] = new Seg(valueStart + offset + lead, token.Length);
                }
                else if (recordTokens)
                {
                    if (h.ConnectionTokenCount == HttpHead.MaxConnectionTokens)
                    {
                        return ParseError.BadHeaderValue;
                    }

                    h.ConnectionTokens[h.ConnectionTokenCount++] = new Seg(valueStart + offset + lead, token.Length);
                }
            }

            if (comma < 0)
            {
                break;
            }

            offset += comma + 1;
        }

        return ParseError.None;
    }

    /// <summary>Fields that frame or route the message: every hop needs them (RFC 9110 §7.6.1 keeps such fields out of Connection).</summary>
    private static bool IsFramingField(ReadOnlySpan<byte> token) => token.Length switch
    {
        4 => Ascii.EqualsIgnoreCase(token, "host"u8),
        14 => Ascii.EqualsIgnoreCase(token, "content-length"u8),
        17 => Ascii.EqualsIgnoreCase(token, "transfer-encoding"u8),
        _ => false,
    };

    private static ParseError HostAgrees(HttpHead h)
    {
        var hostValue = h.Span(h.HostHeader);
        if (!TryParseAuthority(hostValue, h.HostHeader.Start, portRequired: false, defaultPort: 80, out var host, out var port))
        {
            return ParseError.BadTarget;
        }

        return port == h.TargetPort && Ascii.EqualsIgnoreCase(h.Span(host), h.Span(h.TargetHost)) ? ParseError.None : ParseError.HostMismatch;
    }

    private static bool IsDigit(byte c) => (uint)(c - '0') <= 9;
}
