using System.Buffers.Binary;

namespace ChronoGuard.Resolution;

/// <summary>
/// Writes a DNS message into a span. A write that does not fit sets <see cref="Overflowed"/> and writes
/// nothing; the caller checks once at the end. Names are written from text, uncompressed except that a
/// name equal to the one registered by <see cref="SetCompressionTarget"/> (the question's) becomes a
/// pointer to it: answers repeat the question's name, and a fixed target keeps the writer free of tables.
/// </summary>
internal ref struct DnsWriter(Span<byte> buffer)
{
    private readonly Span<byte> _buffer = buffer;
    private int _target = -1;
    private ReadOnlySpan<byte> _targetText;

    public int Position { get; private set; }

    public bool Overflowed { get; private set; }

    public readonly ReadOnlySpan<byte> Written => _buffer[..Position];

    public readonly Span<byte> Buffer => _buffer;

    /// <summary>Names equal to <paramref name="text"/> (any case) are written as a pointer to <paramref name="offset"/>.</summary>
    public void SetCompressionTarget(int offset, ReadOnlySpan<byte> text)
    {
        _target = offset;
        _targetText = text;
    }

    public void WriteUInt16(ushort value)
    {
        if (Reserve(2) is var at && at >= 0)
        {
            BinaryPrimitives.WriteUInt16BigEndian(_buffer[at..], value);
        }
    }

    public void WriteUInt32(uint value)
    {
        if (Reserve(4) is var at && at >= 0)
        {
            BinaryPrimitives.WriteUInt32BigEndian(_buffer[at..], value);
        }
    }

    public void WriteBytes(scoped ReadOnlySpan<byte> bytes)
    {
        if (Reserve(bytes.Length) is var at && at >= 0)
        {
            bytes.CopyTo(_buffer[at..]);
        }
    }

    /// <summary>Overwrites two bytes already written (a length once its data is known).</summary>
    public readonly void PatchUInt16(int at, ushort value)
    {
        if (at + 2 <= Position)
        {
            BinaryPrimitives.WriteUInt16BigEndian(_buffer[at..], value);
        }
    }

    public readonly void PatchUInt32(int at, uint value)
    {
        if (at + 4 <= Position)
        {
            BinaryPrimitives.WriteUInt32BigEndian(_buffer[at..], value);
        }
    }

    /// <summary>
    /// Writes a name from dotted text (no trailing dot; empty is the root). The caller passes text a
    /// reader produced or checked (labels 1-63 bytes, no empty label); anything else overflows.
    /// </summary>
    public void WriteName(scoped ReadOnlySpan<byte> text)
    {
        if (_target >= 0 && !text.IsEmpty && DnsWire.SameName(text, _targetText))
        {
            WriteUInt16((ushort)(0xC000 | _target));
            return;
        }

        if (text.Length > DnsWire.MaxNameText)
        {
            Overflowed = true;
            return;
        }

        while (!text.IsEmpty)
        {
            var dot = text.IndexOf((byte)'.');
            var label = dot < 0 ? text : text[..dot];
            if (label.IsEmpty || label.Length > DnsWire.MaxLabel || Reserve(1 + label.Length) is not (>= 0 and var at))
            {
                Overflowed = true;
                return;
            }

            _buffer[at] = (byte)label.Length;
            label.CopyTo(_buffer[(at + 1)..]);
            text = dot < 0 ? default : text[(dot + 1)..];
            if (dot >= 0 && text.IsEmpty)
            {
                Overflowed = true; // a trailing dot would be an empty label
                return;
            }
        }

        if (Reserve(1) is var end && end >= 0)
        {
            _buffer[end] = 0;
        }
    }

    private int Reserve(int count)
    {
        if (Overflowed || Position + count > _buffer.Length)
        {
            Overflowed = true;
            return -1;
        }

        var at = Position;
        Position += count;
        return at;
    }
}
