using System.Buffers.Text;

namespace ChronoGuard.Http;

/// <summary>Appends ASCII into a caller-sized buffer; callers size it so that overflow is a bug.</summary>
internal ref struct HeadWriter
{
    private readonly Span<byte> _buffer;
    private int _pos;

    public HeadWriter(Span<byte> buffer)
    {
        _buffer = buffer;
        _pos = 0;
    }

    public readonly int Length => _pos;

    public void Append(scoped ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(_buffer[_pos..]);
        _pos += bytes.Length;
    }

    public void Append(long value)
    {
        Utf8Formatter.TryFormat(value, _buffer[_pos..], out var written);
        _pos += written;
    }

    /// <summary>
    /// At most <paramref name="max"/> chars of text that may come from a policy file: in a status line
    /// or a header only visible ASCII is safe (no CR/LF to split the head), and parentheses would end
    /// a "(chronoguard: ...)" early, so anything else becomes '_'.
    /// </summary>
    public void AppendVisible(string? value, int max)
    {
        var n = Math.Min(value?.Length ?? 0, max);
        var destination = _buffer.Slice(_pos, n);
        for (var i = 0; i < n; i++)
        {
            var c = value![i];
            destination[i] = c is > ' ' and < (char)0x7F and not '(' and not ')' ? (byte)c : (byte)'_';
        }

        _pos += n;
    }

    public void Header(scoped ReadOnlySpan<byte> name, scoped ReadOnlySpan<byte> value)
    {
        Append(name);
        Append(": "u8);
        Append(value);
        Append("\r\n"u8);
    }

    /// <summary>
    /// Framing leaves as the parser understood it, once: the body is relayed by exactly this, so the
    /// next hop cannot be told anything else (no header rule can drop or duplicate it).
    /// </summary>
    public void Framing(HttpHead h)
    {
        if (h.Chunked)
        {
            Append("Transfer-Encoding: chunked\r\n"u8);
        }
        else if (h.ContentLength >= 0)
        {
            Append("Content-Length: "u8);
            Append(h.ContentLength);
            Append("\r\n"u8);
        }
    }
}
