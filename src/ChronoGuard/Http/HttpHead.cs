using System.Buffers;

namespace ChronoGuard.Http;

/// <summary>
/// One parsed HTTP/1.x head (request or response), reused for every message on a connection.
/// The head bytes are copied once into <see cref="Buffer"/> (rented, sized to the head limit) so that
/// fields are offsets that survive awaits, and the forwarder can rewrite the head from them.
/// </summary>
internal sealed class HttpHead : IDisposable
{
    public const int MaxConnectionTokens = 16;

    private byte[]? _buffer;
    private byte[]? _withoutParameters;

    public HttpHead(int maxHeadBytes, int maxHeaders)
    {
        _buffer = ArrayPool<byte>.Shared.Rent(maxHeadBytes);
        MaxHeadBytes = maxHeadBytes;
        HeaderNames = new Seg[maxHeaders];
        HeaderValues = new Seg[maxHeaders];
        HeaderDropped = new bool[maxHeaders];
        ConnectionTokens = new Seg[MaxConnectionTokens];
        WithoutParametersLength = -1;
    }

    public byte[] Buffer => _buffer ?? throw new ObjectDisposedException(nameof(HttpHead));
    public int MaxHeadBytes { get; }

    // Accumulation state while the head arrives (see HeadReader).
    public int Length;
    public int Scanned;
    public int LineStart;

    // Common to requests and responses.
    public int VersionMinor;
    public long ContentLength;
    public bool Chunked;
    public bool HasTransferEncoding;
    public bool ConnectionClose;
    public bool ConnectionKeepAlive;
    public int HeaderCount;
    public readonly Seg[] HeaderNames;
    public readonly Seg[] HeaderValues;
    /// <summary>Hop-by-hop and Proxy-* headers that never cross the proxy, and framing, which the rewriters write.</summary>
    public readonly bool[] HeaderDropped;
    public readonly Seg[] ConnectionTokens;
    public int ConnectionTokenCount;

    // Requests.
    public Seg Method;
    public Seg Target;
    public Seg TargetHost;
    public int TargetPort;
    /// <summary>Origin-form path (normalised in place) and query of an absolute-form target; empty means "/".</summary>
    public Seg TargetPath;
    /// <summary>How much of <see cref="TargetPath"/> is the path (the rest is the query).</summary>
    public int PathLength;
    /// <summary>Length of the path read without its parameters, in its own buffer; -1 when the path has none.</summary>
    public int WithoutParametersLength;
    public bool HasProxyAuthorization;
    public bool HasUserAgent;
    public Seg HostHeader;
    public int HostIndex;
    public Seg ProxyAuthorization;
    public Seg UserAgent;
    public bool IsConnect;
    public bool IsHead;
    public bool ExpectContinue;

    /// <summary>The first <c>Upgrade</c> value (the header itself is dropped: only an inspected exchange relays it).</summary>
    public Seg Upgrade;

    /// <summary><c>Connection</c> names <c>upgrade</c>.</summary>
    public bool ConnectionUpgrade;

    // Responses.
    public int StatusCode;
    public Seg StatusLine;

    public ReadOnlySpan<byte> Span(Seg seg) => Buffer.AsSpan(seg.Start, seg.Length);

    /// <summary>The normalised path rules judge (no query; "/" when the target has none).</summary>
    public ReadOnlySpan<byte> Path => PathLength == 0 ? "/"u8 : Buffer.AsSpan(TargetPath.Start, PathLength);

    /// <summary>The path with its parameters dropped, when it has any (see <see cref="WithoutParametersLength"/>).</summary>
    public ReadOnlySpan<byte> PathWithoutParameters => _withoutParameters.AsSpan(0, Math.Max(WithoutParametersLength, 0));

    /// <summary>Room for the second reading of a path with parameters; rented once and kept with the head.</summary>
    public Span<byte> WithoutParametersBuffer(int length)
    {
        if (_withoutParameters is null || _withoutParameters.Length < length)
        {
            if (_withoutParameters is not null)
            {
                ArrayPool<byte>.Shared.Return(_withoutParameters);
            }

            _withoutParameters = ArrayPool<byte>.Shared.Rent(length);
        }

        return _withoutParameters;
    }

    public bool KeepAlive => VersionMinor >= 1 ? !ConnectionClose : ConnectionKeepAlive && !ConnectionClose;

    /// <summary>Forget the previous message; the buffer is kept for the next one.</summary>
    public void Reset()
    {
        Length = 0;
        Scanned = 0;
        LineStart = 0;
        VersionMinor = 1;
        ContentLength = -1;
        Chunked = false;
        HasTransferEncoding = false;
        ConnectionClose = false;
        ConnectionKeepAlive = false;
        HeaderCount = 0;
        ConnectionTokenCount = 0;
        Method = default;
        Target = default;
        TargetHost = default;
        TargetPort = 0;
        TargetPath = default;
        PathLength = 0;
        WithoutParametersLength = -1;
        HasProxyAuthorization = false;
        HasUserAgent = false;
        HostHeader = default;
        HostIndex = -1;
        ProxyAuthorization = default;
        UserAgent = default;
        IsConnect = false;
        IsHead = false;
        ExpectContinue = false;
        Upgrade = default;
        ConnectionUpgrade = false;
        StatusCode = 0;
        StatusLine = default;
    }

    /// <summary>Whether header <paramref name="i"/> stays on this hop (Connection-listed names included).</summary>
    public bool IsForwarded(int i)
    {
        if (HeaderDropped[i])
        {
            return false;
        }

        var name = Span(HeaderNames[i]);
        for (var t = 0; t < ConnectionTokenCount; t++)
        {
            if (System.Text.Ascii.EqualsIgnoreCase(name, Span(ConnectionTokens[t])))
            {
                return false;
            }
        }

        return true;
    }

    public void Dispose()
    {
        var b = _buffer;
        _buffer = null;
        if (b is not null)
        {
            ArrayPool<byte>.Shared.Return(b);
        }

        var p = _withoutParameters;
        _withoutParameters = null;
        if (p is not null)
        {
            ArrayPool<byte>.Shared.Return(p);
        }
    }
}
