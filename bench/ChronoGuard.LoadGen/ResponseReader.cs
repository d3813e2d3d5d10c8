using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text;

namespace ChronoGuard.LoadGen;

/// <summary>
/// Minimal HTTP/1.x response reader over a raw socket or a (TLS) stream: parses only what framing
/// needs (status, Content-Length, chunked, Connection) and discards bodies without copying them out.
/// </summary>
/// <remarks>
/// One instance per worker, reused across connections, so the 64 KiB buffer is allocated once.
/// The async methods use the pooling builder: when a read has to wait, their state machines come
/// from a per-thread pool instead of a fresh heap box per request.
/// </remarks>
internal sealed class ResponseReader
{
    private readonly byte[] _buf = new byte[64 * 1024];
    private int _start;
    private int _end;
    private Socket? _socket;
    private Stream? _stream;

    /// <summary>Every byte received through this reader, head and body, across all connections.</summary>
    public long BytesRead { get; private set; }

    public int Status { get; private set; }
    public long ContentLength { get; private set; }
    public bool Chunked { get; private set; }
    /// <summary>The connection cannot carry another request after this response.</summary>
    public bool Close { get; private set; }
    /// <summary>The response carries a header only a proxy adds to responses it generated itself.</summary>
    public bool ProxyGenerated { get; private set; }

    /// <summary>Bytes already received beyond the last parsed message.</summary>
    public int Buffered => _end - _start;

    public void Attach(Socket socket)
    {
        _socket = socket;
        _stream = null;
        _start = _end = 0;
    }

    public void Attach(Stream stream)
    {
        _stream = stream;
        _socket = null;
        _start = _end = 0;
    }

    private ValueTask<int> ReceiveAsync(Memory<byte> into, CancellationToken ct) =>
        _socket is not null ? _socket.ReceiveAsync(into, SocketFlags.None, ct) : _stream!.ReadAsync(into, ct);

    /// <summary>
    /// Reads one response head (skipping interim 1xx responses) and returns its status, or -1 when
    /// the peer closed the connection before sending a single byte, the signature of a keep-alive
    /// connection the server had already given up on.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<int> ReadHeadAsync(CancellationToken ct)
    {
        var received = _end > _start;
        while (true)
        {
            if (_end > _start)
            {
                var result = ParseHead(_buf.AsSpan(_start, _end - _start), out var consumed);
                if (result > 0)
                {
                    _start += consumed;
                    if (Status is >= 100 and < 200 and not 101)
                    {
                        continue;
                    }
                    return Status;
                }
                if (result < 0)
                {
                    throw new InvalidDataException("malformed response head");
                }
            }
            MakeRoom();
            var n = await ReceiveAsync(_buf.AsMemory(_end), ct).ConfigureAwait(false);
            if (n == 0)
            {
                if (!received)
                {
                    return -1;
                }
                throw new EndOfStreamException("connection closed inside the response head");
            }
            received = true;
            _end += n;
            BytesRead += n;
        }
    }

    /// <summary>Consumes the body of the response whose head was just read.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask ReadBodyAsync(CancellationToken ct)
    {
        if (Status is 204 or 304 or (>= 100 and < 200))
        {
            return;
        }
        if (Chunked)
        {
            while (true)
            {
                var lineLength = await ReadLineAsync(ct).ConfigureAwait(false);
                var size = ParseChunkSize(_buf.AsSpan(_start, lineLength));
                _start += lineLength + 2;
                if (size == 0)
                {
                    // Trailer section: header lines up to an empty one.
                    while ((lineLength = await ReadLineAsync(ct).ConfigureAwait(false)) != 0)
                    {
                        _start += lineLength + 2;
                    }
                    _start += 2;
                    return;
                }
                await SkipAsync(size + 2, ct).ConfigureAwait(false);
            }
        }
        if (ContentLength >= 0)
        {
            await SkipAsync(ContentLength, ct).ConfigureAwait(false);
            return;
        }
        // Neither length nor chunked: the body runs to the end of the connection.
        Close = true;
        _start = _end = 0;
        int n;
        while ((n = await ReceiveAsync(_buf, ct).ConfigureAwait(false)) > 0)
        {
            BytesRead += n;
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask SkipAsync(long count, CancellationToken ct)
    {
        while (true)
        {
            var available = _end - _start;
            if (available >= count)
            {
                _start += (int)count;
                return;
            }
            count -= available;
            _start = _end = 0;
            var n = await ReceiveAsync(_buf, ct).ConfigureAwait(false);
            if (n == 0)
            {
                throw new EndOfStreamException("connection closed inside the response body");
            }
            _end = n;
            BytesRead += n;
        }
    }

    /// <summary>Ensures a CRLF-terminated line starts at the read position; returns its length without CRLF.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<int> ReadLineAsync(CancellationToken ct)
    {
        while (true)
        {
            var idx = _buf.AsSpan(_start, _end - _start).IndexOf("\r\n"u8);
            if (idx >= 0)
            {
                return idx;
            }
            MakeRoom();
            var n = await ReceiveAsync(_buf.AsMemory(_end), ct).ConfigureAwait(false);
            if (n == 0)
            {
                throw new EndOfStreamException("connection closed inside a chunked body");
            }
            _end += n;
            BytesRead += n;
        }
    }

    private void MakeRoom()
    {
        if (_start == _end)
        {
            _start = _end = 0;
        }
        else if (_end == _buf.Length)
        {
            if (_start == 0)
            {
                throw new InvalidDataException("response head or chunk line larger than 64 KiB");
            }
            _buf.AsSpan(_start, _end - _start).CopyTo(_buf);
            _end -= _start;
            _start = 0;
        }
    }

    /// <returns>1 parsed, 0 incomplete, -1 malformed.</returns>
    private int ParseHead(ReadOnlySpan<byte> data, out int consumed)
    {
        consumed = 0;
        var headEnd = data.IndexOf("\r\n\r\n"u8);
        if (headEnd < 0)
        {
            return 0;
        }
        consumed = headEnd + 4;
        var head = data[..(headEnd + 2)];
        var eol = head.IndexOf("\r\n"u8);
        var line = head[..eol];
        // "HTTP/1.x SSS[ reason]"
        if (line.Length < 12 || !line.StartsWith("HTTP/1."u8) || line[8] != (byte)' '
            || (line.Length > 12 && line[12] != (byte)' ')
            || !IsDigit(line[9]) || !IsDigit(line[10]) || !IsDigit(line[11]))
        {
            return -1;
        }
        Status = ((line[9] - '0') * 100) + ((line[10] - '0') * 10) + (line[11] - '0');
        var http10 = line[7] == (byte)'0';
        ContentLength = -1;
        Chunked = false;
        Close = http10;
        ProxyGenerated = false;

        var rest = head[(eol + 2)..];
        while (!rest.IsEmpty)
        {
            eol = rest.IndexOf("\r\n"u8);
            var header = rest[..eol];
            rest = rest[(eol + 2)..];
            if (header.IsEmpty || header[0] is (byte)' ' or (byte)'\t')
            {
                continue; // obsolete line folding: continuation of a header we do not read
            }
            var colon = header.IndexOf((byte)':');
            if (colon <= 0)
            {
                return -1;
            }
            var name = header[..colon];
            var value = header[(colon + 1)..].Trim(" \t"u8);
            if (Ascii.EqualsIgnoreCase(name, "content-length"u8))
            {
                if (!TryParseDecimal(value, out var length))
                {
                    return -1;
                }
                ContentLength = length;
            }
            else if (Ascii.EqualsIgnoreCase(name, "transfer-encoding"u8))
            {
                Chunked = value.Length >= 7 && Ascii.EqualsIgnoreCase(value[^7..], "chunked"u8);
            }
            else if (Ascii.EqualsIgnoreCase(name, "connection"u8))
            {
                if (ContainsIgnoreCase(value, "close"u8))
                {
                    Close = true;
                }
                else if (http10 && ContainsIgnoreCase(value, "keep-alive"u8))
                {
                    Close = false;
                }
            }
            // Proxy-Status (RFC 9209), squid's error pages and chronoguard's own refusals mark
            // responses a proxy made up rather than relayed.
            else if (Ascii.EqualsIgnoreCase(name, "proxy-status"u8)
                || Ascii.EqualsIgnoreCase(name, "x-squid-error"u8)
                || Ascii.EqualsIgnoreCase(name, "x-chronoguard-decision"u8))
            {
                ProxyGenerated = true;
            }
        }
        if (Chunked)
        {
            ContentLength = -1;
        }
        return 1;
    }

    private static bool IsDigit(byte b) => (uint)(b - '0') <= 9;

    private static bool TryParseDecimal(ReadOnlySpan<byte> s, out long value)
    {
        value = 0;
        if (s.IsEmpty || s.Length > 18)
        {
            return false;
        }
        foreach (var b in s)
        {
            if (!IsDigit(b))
            {
                return false;
            }
            value = (value * 10) + (b - '0');
        }
        return true;
    }

    private static long ParseChunkSize(ReadOnlySpan<byte> line)
    {
        long size = 0;
        var digits = 0;
        foreach (var b in line)
        {
            int d;
            if (IsDigit(b))
            {
                d = b - '0';
            }
            else if ((uint)((b | 0x20) - 'a') <= 5)
            {
                d = (b | 0x20) - 'a' + 10;
            }
            else if (b is (byte)';' or (byte)' ' or (byte)'\t')
            {
                break; // chunk extensions
            }
            else
            {
                throw new InvalidDataException("malformed chunk size");
            }
            if (++digits > 15)
            {
                throw new InvalidDataException("chunk size too large");
            }
            size = (size << 4) | (uint)d;
        }
        if (digits == 0)
        {
            throw new InvalidDataException("malformed chunk size");
        }
        return size;
    }

    private static bool ContainsIgnoreCase(ReadOnlySpan<byte> haystack, ReadOnlySpan<byte> needle)
    {
        for (var i = 0; i + needle.Length <= haystack.Length; i++)
        {
            if (Ascii.EqualsIgnoreCase(haystack.Slice(i, needle.Length), needle))
            {
                return true;
            }
        }
        return false;
    }
}
