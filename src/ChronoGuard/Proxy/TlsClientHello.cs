using System.Buffers;

namespace ChronoGuard.Proxy;

/// <summary>
/// Finds the SNI host name in a TLS ClientHello without consuming or copying the bytes (RFC 8446
/// §4.1.2, RFC 6066 §3). Only what is needed is walked: record header, handshake header, the fixed
/// fields, then the extensions until server_name.
/// </summary>
internal static class TlsClientHello
{
    public enum Result : byte
    {
        NeedMore,
        NotTls,
        NoSni,
        Sni,
    }

    // A ClientHello fits one record in practice; 16 KiB is the record limit.
    private const int MaxRecord = 16 * 1024;

    public static Result TryGetSni(in ReadOnlySequence<byte> input, Span<byte> hostBuffer, out int hostLength)
    {
        hostLength = 0;
        if (input.Length < 5)
        {
            return input.IsEmpty || input.FirstSpan[0] == 0x16 ? Result.NeedMore : Result.NotTls;
        }

        Span<byte> header = stackalloc byte[5];
        input.Slice(0, 5).CopyTo(header);
        if (header[0] != 0x16 || header[1] != 0x03)
        {
            return Result.NotTls;
        }

        var recordLength = (header[3] << 8) | header[4];
        if (recordLength is < 4 or > MaxRecord)
        {
            return Result.NotTls;
        }

        if (input.Length < 5 + recordLength)
        {
            return Result.NeedMore;
        }

        var rented = ArrayPool<byte>.Shared.Rent(recordLength);
        try
        {
            var record = rented.AsSpan(0, recordLength);
            input.Slice(5, recordLength).CopyTo(record);
            return Parse(record, hostBuffer, out hostLength);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    private static Result Parse(ReadOnlySpan<byte> r, Span<byte> hostBuffer, out int hostLength)
    {
        hostLength = 0;
        // Handshake: type 1 (ClientHello), 3-byte length; we require it within this record.
        if (r[0] != 0x01)
        {
            return Result.NotTls;
        }

        var p = 4;
        p += 2 + 32; // legacy_version, random
        if (!Skip8(r, ref p) || !Skip16(r, ref p) || !Skip8(r, ref p))
        {
            return Result.NotTls; // session id, cipher suites, compression methods
        }

        if (p + 2 > r.Length)
        {
            return Result.NoSni; // no extensions at all
        }

        var extensionsEnd = p + 2 + ((r[p] << 8) | r[p + 1]);
        p += 2;
        if (extensionsEnd > r.Length)
        {
            return Result.NotTls;
        }

        while (p + 4 <= extensionsEnd)
        {
            var type = (r[p] << 8) | r[p + 1];
            var length = (r[p + 2] << 8) | r[p + 3];
            p += 4;
            if (p + length > extensionsEnd)
            {
                return Result.NotTls;
            }

            if (type == 0)
            {
                // server_name_list: 2-byte list length, then entries of type(1) length(2) name.
                var e = r.Slice(p, length);
                if (e.Length < 5 || e[2] != 0)
                {
                    return Result.NoSni;
                }

                var nameLength = (e[3] << 8) | e[4];
                if (5 + nameLength > e.Length || nameLength > hostBuffer.Length || nameLength == 0)
                {
                    return Result.NotTls;
                }

                e.Slice(5, nameLength).CopyTo(hostBuffer);
                hostLength = nameLength;
                return Result.Sni;
            }

            p += length;
        }

        return Result.NoSni;
    }

    private static bool Skip8(ReadOnlySpan<byte> r, ref int p)
    {
        if (p + 1 > r.Length)
        {
            return false;
        }

        p += 1 + r[p];
        return p <= r.Length;
    }

    private static bool Skip16(ReadOnlySpan<byte> r, ref int p)
    {
        if (p + 2 > r.Length)
        {
            return false;
        }

        p += 2 + ((r[p] << 8) | r[p + 1]);
        return p <= r.Length;
    }
}
