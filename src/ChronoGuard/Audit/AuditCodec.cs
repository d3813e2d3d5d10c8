using System.Buffers.Binary;

namespace ChronoGuard.Audit;

/// <summary>
/// The canonical encoding that the chain hashes (docs/audit-format.md): big-endian integers and
/// length-prefixed UTF-8 strings in a fixed order, so any language can rebuild it from an export.
/// A stored log entry is prevHash (32) ‖ hash (32) ‖ canonical.
/// </summary>
internal static class AuditCodec
{
    public const byte FormatVersion = 1;
    public const int HashBytes = 32;
    public const int EntryPrefix = HashBytes * 2;

    /// <summary>Upper bound of one canonical record.</summary>
    public const int MaxCanonicalBytes = 1 + 8 + 8 + 1 + (AuditRecord.TextCount * 2) + AuditRecord.TextBytes + 4 + 4 + (8 * 4);

    public static int Encode(in AuditRecord r, Span<byte> destination)
    {
        var p = 0;
        destination[p++] = FormatVersion;
        BinaryPrimitives.WriteInt64BigEndian(destination[p..], r.Seq);
        p += 8;
        BinaryPrimitives.WriteInt64BigEndian(destination[p..], r.TimestampNs);
        p += 8;
        destination[p++] = (byte)r.Kind;
        for (var f = 0; f < AuditRecord.TextCount; f++)
        {
            var text = r.Get((AuditText)f);
            BinaryPrimitives.WriteUInt16BigEndian(destination[p..], (ushort)text.Length);
            p += 2;
            text.CopyTo(destination[p..]);
            p += text.Length;
        }

        BinaryPrimitives.WriteInt32BigEndian(destination[p..], r.Port);
        p += 4;
        BinaryPrimitives.WriteInt32BigEndian(destination[p..], r.Status);
        p += 4;
        foreach (var v in (ReadOnlySpan<long>)[r.ConnectionId, r.BytesUp, r.BytesDown, r.DurationMs])
        {
            BinaryPrimitives.WriteInt64BigEndian(destination[p..], v);
            p += 8;
        }

        return p;
    }

    /// <summary>Decodes a canonical record; null when the bytes are not one.</summary>
    public static AuditEntry? Decode(ReadOnlySpan<byte> c)
    {
        try
        {
            if (c.Length < 18 || c[0] != FormatVersion)
            {
                return null;
            }

            var p = 1;
            var seq = BinaryPrimitives.ReadInt64BigEndian(c[p..]);
            p += 8;
            var ts = BinaryPrimitives.ReadInt64BigEndian(c[p..]);
            p += 8;
            var kind = (AuditKind)c[p++];
            var texts = new string[AuditRecord.TextCount];
            for (var f = 0; f < texts.Length; f++)
            {
                var n = BinaryPrimitives.ReadUInt16BigEndian(c[p..]);
                p += 2;
                texts[f] = System.Text.Encoding.UTF8.GetString(c.Slice(p, n));
                p += n;
            }

            var port = BinaryPrimitives.ReadInt32BigEndian(c[p..]);
            var status = BinaryPrimitives.ReadInt32BigEndian(c[(p + 4)..]);
            p += 8;
            var conn = BinaryPrimitives.ReadInt64BigEndian(c[p..]);
            var up = BinaryPrimitives.ReadInt64BigEndian(c[(p + 8)..]);
            var down = BinaryPrimitives.ReadInt64BigEndian(c[(p + 16)..]);
            var duration = BinaryPrimitives.ReadInt64BigEndian(c[(p + 24)..]);
            if (p + 32 != c.Length)
            {
                return null;
            }

            return new AuditEntry
            {
                Seq = seq,
                TimestampNs = ts,
                Kind = kind,
                Agent = texts[0],
                SourceIp = texts[1],
                Method = texts[2],
                Host = texts[3],
                Path = texts[4],
                Decision = texts[5],
                Reason = texts[6],
                Policy = texts[7],
                Rule = texts[8],
                Port = port,
                Status = status,
                ConnectionId = conn,
                BytesUp = up,
                BytesDown = down,
                DurationMs = duration,
            };
        }
        catch (ArgumentOutOfRangeException)
        {
            return null;
        }
    }

    /// <summary>Re-encodes a decoded entry (what an export's reader does to verify).</summary>
    public static byte[] Encode(AuditEntry e)
    {
        var r = default(AuditRecord);
        r.Seq = e.Seq;
        r.TimestampNs = e.TimestampNs;
        r.Kind = e.Kind;
        r.Port = e.Port;
        r.Status = e.Status;
        r.ConnectionId = e.ConnectionId;
        r.BytesUp = e.BytesUp;
        r.BytesDown = e.BytesDown;
        r.DurationMs = e.DurationMs;
        var buffer = new byte[MaxCanonicalBytes + (AuditRecord.TextCount * 1024)];
        var p = 0;
        buffer[p++] = FormatVersion;
        BinaryPrimitives.WriteInt64BigEndian(buffer.AsSpan(p), e.Seq);
        p += 8;
        BinaryPrimitives.WriteInt64BigEndian(buffer.AsSpan(p), e.TimestampNs);
        p += 8;
        buffer[p++] = (byte)e.Kind;
        foreach (var s in e.Texts)
        {
            var n = System.Text.Encoding.UTF8.GetBytes(s, buffer.AsSpan(p + 2));
            BinaryPrimitives.WriteUInt16BigEndian(buffer.AsSpan(p), (ushort)n);
            p += 2 + n;
        }

        BinaryPrimitives.WriteInt32BigEndian(buffer.AsSpan(p), e.Port);
        BinaryPrimitives.WriteInt32BigEndian(buffer.AsSpan(p + 4), e.Status);
        p += 8;
        foreach (var v in new[] { e.ConnectionId, e.BytesUp, e.BytesDown, e.DurationMs })
        {
            BinaryPrimitives.WriteInt64BigEndian(buffer.AsSpan(p), v);
            p += 8;
        }

        return buffer[..p];
    }
}
