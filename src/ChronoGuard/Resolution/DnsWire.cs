using System.Buffers.Binary;

namespace ChronoGuard.Resolution;

/// <summary>
/// The DNS message format (RFC 1035 §4) as far as the guard needs it, read from and written to spans
/// with no allocation. Every read is bounds-checked against the message and fails (false) on anything
/// it cannot read exactly: a truncated field, a label over 63 bytes or of an extended type (0x40, 0x80),
/// a name over 255 wire bytes (253 as text), a compression pointer that does not point before every
/// byte of the name read so far (so no loop can be built), more than <see cref="MaxPointers"/> pointers
/// in one name, or a '.' inside a label (its text form would be another name).
/// </summary>
internal static class DnsWire
{
    public const int HeaderLength = 12;

    /// <summary>The longest name as text, without the trailing dot (255 wire bytes).</summary>
    public const int MaxNameText = 253;

    public const int MaxNameWire = 255;

    public const int MaxLabel = 63;

    /// <summary>Pointers followed in one name: real encoders need one; a chain of many only costs the reader.</summary>
    public const int MaxPointers = 16;

    /// <summary>The largest message over TCP (two-byte length prefix) and the largest the guard reads at all.</summary>
    public const int MaxMessage = 65535;

    public const ushort TypeA = 1;
    public const ushort TypeNs = 2;
    public const ushort TypeCname = 5;
    public const ushort TypeSoa = 6;
    public const ushort TypePtr = 12;
    public const ushort TypeMx = 15;
    public const ushort TypeTxt = 16;
    public const ushort TypeAaaa = 28;
    public const ushort TypeDname = 39;
    public const ushort TypeOpt = 41;
    public const ushort TypeSvcb = 64;
    public const ushort TypeHttps = 65;
    public const ushort ClassIn = 1;

    /// <summary>The SvcParamKey of Encrypted ClientHello configs (RFC 9460 §14.3.2).</summary>
    public const ushort SvcParamEch = 5;

    public const int RcodeNoError = 0;
    public const int RcodeFormErr = 1;
    public const int RcodeServFail = 2;
    public const int RcodeNxDomain = 3;
    public const int RcodeNotImp = 4;
    public const int RcodeRefused = 5;

    public static ushort Id(ReadOnlySpan<byte> m) => BinaryPrimitives.ReadUInt16BigEndian(m);

    public static ushort Flags(ReadOnlySpan<byte> m) => BinaryPrimitives.ReadUInt16BigEndian(m[2..]);

    public static bool IsResponse(ushort flags) => (flags & 0x8000) != 0;

    public static int Opcode(ushort flags) => (flags >> 11) & 0xF;

    public static bool Truncated(ushort flags) => (flags & 0x0200) != 0;

    public static bool RecursionDesired(ushort flags) => (flags & 0x0100) != 0;

    public static int Rcode(ushort flags) => flags & 0xF;

    public static int Count(ReadOnlySpan<byte> m, int section) => BinaryPrimitives.ReadUInt16BigEndian(m[(4 + (2 * section))..]);

    /// <summary>
    /// Reads the (possibly compressed) name at <paramref name="offset"/> as dotted text without the
    /// trailing dot (the root is empty) into <paramref name="text"/> (at least <see cref="MaxNameText"/>
    /// bytes); <paramref name="offset"/> moves past the name as it stands in the message.
    /// </summary>
    public static bool TryReadName(ReadOnlySpan<byte> message, ref int offset, Span<byte> text, out int length)
    {
        length = 0;
        var pos = offset;
        var lowest = offset; // every pointer must point below every byte of the name read so far
        var after = -1;
        var pointers = 0;
        var wire = 1;
        while (true)
        {
            if ((uint)pos >= (uint)message.Length)
            {
                return false;
            }

            int b = message[pos];
            if (b == 0)
            {
                offset = after >= 0 ? after : pos + 1;
                return true;
            }

            if ((b & 0xC0) == 0xC0)
            {
                if (pos + 1 >= message.Length || ++pointers > MaxPointers)
                {
                    return false;
                }

                var target = ((b & 0x3F) << 8) | message[pos + 1];
                if (after < 0)
                {
                    after = pos + 2;
                }

                if (target >= lowest)
                {
                    return false;
                }

                lowest = target;
                pos = target;
                continue;
            }

            if (b > MaxLabel)
            {
                return false; // 0x40 and 0x80: extended and reserved label types
            }

            wire += b + 1;
            if (wire > MaxNameWire || pos + 1 + b > message.Length)
            {
                return false;
            }

            var label = message.Slice(pos + 1, b);
            if (label.Contains((byte)'.'))
            {
                return false;
            }

            if (length > 0)
            {
                text[length++] = (byte)'.';
            }

            label.CopyTo(text[length..]);
            length += b;
            pos += 1 + b;
        }
    }

    /// <summary>Moves past a name without keeping its text (same checks as <see cref="TryReadName"/>).</summary>
    public static bool TrySkipName(ReadOnlySpan<byte> message, ref int offset)
    {
        Span<byte> scratch = stackalloc byte[MaxNameText];
        return TryReadName(message, ref offset, scratch, out _);
    }

    /// <summary>A question: its name as text, type and class.</summary>
    public static bool TryReadQuestion(ReadOnlySpan<byte> message, ref int offset, Span<byte> name, out int nameLength, out ushort type, out ushort klass)
    {
        type = klass = 0;
        if (!TryReadName(message, ref offset, name, out nameLength) || offset + 4 > message.Length)
        {
            return false;
        }

        type = BinaryPrimitives.ReadUInt16BigEndian(message[offset..]);
        klass = BinaryPrimitives.ReadUInt16BigEndian(message[(offset + 2)..]);
        offset += 4;
        return true;
    }

    /// <summary>A resource record: its owner name as text, then type, class, TTL and where its data lies.</summary>
    public static bool TryReadRecord(ReadOnlySpan<byte> message, ref int offset, Span<byte> name, out int nameLength, out DnsRecord record)
    {
        record = default;
        if (!TryReadName(message, ref offset, name, out nameLength) || offset + 10 > message.Length)
        {
            return false;
        }

        var fixedPart = message[offset..];
        var rdLength = BinaryPrimitives.ReadUInt16BigEndian(fixedPart[8..]);
        if (offset + 10 + rdLength > message.Length)
        {
            return false;
        }

        record = new DnsRecord(
            BinaryPrimitives.ReadUInt16BigEndian(fixedPart),
            BinaryPrimitives.ReadUInt16BigEndian(fixedPart[2..]),
            BinaryPrimitives.ReadUInt32BigEndian(fixedPart[4..]),
            offset + 10,
            rdLength);
        offset += 10 + rdLength;
        return true;
    }

    /// <summary>Whether two names as text are the same name (DNS compares ASCII without case).</summary>
    public static bool SameName(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b) => System.Text.Ascii.EqualsIgnoreCase(a, b);
}
