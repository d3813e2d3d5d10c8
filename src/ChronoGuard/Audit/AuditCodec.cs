using System.Buffers.Binary;
using System.Text;

namespace ChronoGuard.Audit;

/// <summary>
/// The canonical encoding that the chain hashes (docs/audit-format.md): big-endian integers and
/// length-prefixed UTF-8 strings in a fixed order, so any language can rebuild it from an export.
/// The first byte is the format version; the writer writes version 2, or 3 for a record that names a
/// credential (SPEC §7: the lowest format that carries the record, so a log without credentials reads
/// as it always did); readers accept 1, 2 and 3 (a log started by an older binary and continued by this
/// one holds several). The seq sits at offset 1 in every version. A stored log entry is prevHash (32) ‖ hash (32) ‖ canonical.
/// </summary>
internal static class AuditCodec
{
    public const byte FormatVersion = 2;
    public const byte FormatVersion1 = 1;

    /// <summary>Format 2 with the <c>credential</c> text field appended (SPEC §5, §7).</summary>
    public const byte FormatVersion3 = 3;
    public const int HashBytes = 32;
    public const int EntryPrefix = HashBytes * 2;

    /// <summary>Text fields of format 1 (format 2 appends dialedIp, format 3 credential).</summary>
    public const int TextCountV1 = 9;

    public const int TextCountV2 = 10;

    /// <summary>Upper bound of one canonical record.</summary>
    public const int MaxCanonicalBytes = 1 + 8 + 8 + 1 + (AuditRecord.TextCount * 2) + AuditRecord.TextBytes + 4 + 4 + (8 * 4) + 2;

    /// <summary>Encodes a ring record in the current format (the writer thread: no allocation).</summary>
    public static int Encode(in AuditRecord r, Span<byte> destination)
    {
        // Format 3 carries what format 2 cannot say: a credential's name, or the transparent identity.
        var v3 = !r.Get(AuditText.Credential).IsEmpty || r.Identity == AuditIdentity.Transparent;
        var p = Header(destination, v3 ? FormatVersion3 : FormatVersion, r.Seq, r.TimestampNs, r.Kind);
        var texts = v3 ? AuditRecord.TextCount : TextCountV2;
        for (var f = 0; f < texts; f++)
        {
            var text = r.Get((AuditText)f);
            BinaryPrimitives.WriteUInt16BigEndian(destination[p..], (ushort)text.Length);
            p += 2;
            text.CopyTo(destination[p..]);
            p += text.Length;
        }

        p = Numbers(destination, p, r.Port, r.Status, r.ConnectionId, r.BytesUp, r.BytesDown, r.DurationMs);
        destination[p++] = r.Enforced ? (byte)1 : (byte)0;
        destination[p++] = (byte)r.Identity;
        return p;
    }

    /// <summary>Re-encodes a decoded or parsed entry in its own format (what a verifier of an export does).</summary>
    public static byte[] Encode(AuditEntry e)
    {
        var texts = e.Texts;
        var size = 1 + 8 + 8 + 1 + 4 + 4 + (8 * 4) + (e.Format == FormatVersion1 ? 0 : 2);
        foreach (var s in texts)
        {
            size += 2 + Encoding.UTF8.GetByteCount(s);
        }

        var buffer = new byte[size];
        var d = buffer.AsSpan();
        var p = Header(d, (byte)e.Format, e.Seq, e.TimestampNs, e.Kind);
        foreach (var s in texts)
        {
            var n = Encoding.UTF8.GetBytes(s, d[(p + 2)..]);
            // A field longer than a length prefix can say cannot be a record: the parser refuses it first.
            BinaryPrimitives.WriteUInt16BigEndian(d[p..], (ushort)n);
            p += 2 + n;
        }

        p = Numbers(d, p, e.Port, e.Status, e.ConnectionId, e.BytesUp, e.BytesDown, e.DurationMs);
        if (e.Format != FormatVersion1)
        {
            d[p++] = e.Enforced ? (byte)1 : (byte)0;
            d[p++] = (byte)e.Identity;
        }

        return buffer;
    }

    /// <summary>Decodes a canonical record of either format; null when the bytes are not one.</summary>
    public static AuditEntry? Decode(ReadOnlySpan<byte> c) => Decode(c, out _);

    /// <summary>Decodes a canonical record of either format; null with the reason when the bytes are not one.</summary>
    public static AuditEntry? Decode(ReadOnlySpan<byte> c, out string? problem)
    {
        problem = null;
        if (c.Length < 18)
        {
            problem = $"entry of {c.Length} bytes is too short to be a record";
            return null;
        }

        var version = c[0];
        if (version is not (FormatVersion1 or FormatVersion or FormatVersion3))
        {
            problem = $"unknown format version {version}";
            return null;
        }

        var p = 1;
        var seq = BinaryPrimitives.ReadInt64BigEndian(c[p..]);
        p += 8;
        var ts = BinaryPrimitives.ReadInt64BigEndian(c[p..]);
        p += 8;
        var kindByte = c[p++];
        if (kindByte > (byte)AuditKind.System)
        {
            problem = $"unknown kind {kindByte}";
            return null;
        }

        var texts = new string[version switch { FormatVersion1 => TextCountV1, FormatVersion => TextCountV2, _ => AuditRecord.TextCount }];
        for (var f = 0; f < texts.Length; f++)
        {
            if (p + 2 > c.Length || p + 2 + BinaryPrimitives.ReadUInt16BigEndian(c[p..]) > c.Length)
            {
                problem = "a text field runs past the end of the entry";
                return null;
            }

            var n = BinaryPrimitives.ReadUInt16BigEndian(c[p..]);
            p += 2;
            texts[f] = Encoding.UTF8.GetString(c.Slice(p, n));
            p += n;
        }

        var tail = 8 + 32 + (version == FormatVersion1 ? 0 : 2);
        if (c.Length - p != tail)
        {
            problem = $"entry is {c.Length} bytes, its fields need {p + tail}";
            return null;
        }

        var enforced = true;
        var identity = AuditIdentity.None;
        if (version != FormatVersion1)
        {
            var e = c[p + 40];
            var i = c[p + 41];
            if (e > 1 || i > (byte)(version >= FormatVersion3 ? AuditIdentity.Transparent : AuditIdentity.Listener))
            {
                problem = e > 1 ? $"enforced byte is {e}, not 0 or 1" : $"unknown identity {i}";
                return null;
            }

            enforced = e == 1;
            identity = (AuditIdentity)i;
        }

        return new AuditEntry
        {
            Format = version,
            Seq = seq,
            TimestampNs = ts,
            Kind = (AuditKind)kindByte,
            Agent = texts[0],
            SourceIp = texts[1],
            Method = texts[2],
            Host = texts[3],
            Path = texts[4],
            Decision = texts[5],
            Reason = texts[6],
            Policy = texts[7],
            Rule = texts[8],
            DialedIp = version == FormatVersion1 ? string.Empty : texts[9],
            Credential = version == FormatVersion3 ? texts[10] : string.Empty,
            Port = BinaryPrimitives.ReadInt32BigEndian(c[p..]),
            Status = BinaryPrimitives.ReadInt32BigEndian(c[(p + 4)..]),
            ConnectionId = BinaryPrimitives.ReadInt64BigEndian(c[(p + 8)..]),
            BytesUp = BinaryPrimitives.ReadInt64BigEndian(c[(p + 16)..]),
            BytesDown = BinaryPrimitives.ReadInt64BigEndian(c[(p + 24)..]),
            DurationMs = BinaryPrimitives.ReadInt64BigEndian(c[(p + 32)..]),
            Enforced = enforced,
            Identity = identity,
        };
    }

    private static int Header(Span<byte> d, byte version, long seq, long ts, AuditKind kind)
    {
        d[0] = version;
        BinaryPrimitives.WriteInt64BigEndian(d[1..], seq);
        BinaryPrimitives.WriteInt64BigEndian(d[9..], ts);
        d[17] = (byte)kind;
        return 18;
    }

    private static int Numbers(Span<byte> d, int p, int port, int status, long conn, long up, long down, long duration)
    {
        BinaryPrimitives.WriteInt32BigEndian(d[p..], port);
        BinaryPrimitives.WriteInt32BigEndian(d[(p + 4)..], status);
        BinaryPrimitives.WriteInt64BigEndian(d[(p + 8)..], conn);
        BinaryPrimitives.WriteInt64BigEndian(d[(p + 16)..], up);
        BinaryPrimitives.WriteInt64BigEndian(d[(p + 24)..], down);
        BinaryPrimitives.WriteInt64BigEndian(d[(p + 32)..], duration);
        return p + 40;
    }
}
