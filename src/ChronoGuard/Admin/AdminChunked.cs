using System.Buffers;
using System.Globalization;

namespace ChronoGuard.Admin;

/// <summary>Decodes a whole chunked request body (RFC 9112 §7.1) once all of it has arrived; extensions and trailers are skipped.</summary>
internal static class AdminChunked
{
    /// <returns>1 with the body when complete, 0 when more bytes are needed, -1 when the framing is bad, -2 when the body is over <paramref name="max"/>.</returns>
    public static int TryDecode(ReadOnlySpan<byte> raw, int max, out byte[]? body)
    {
        body = null;
        var output = new ArrayBufferWriter<byte>(256);
        while (true)
        {
            var eol = raw.IndexOf("\r\n"u8);
            if (eol < 0)
            {
                return raw.Length > 64 ? -1 : 0;
            }

            var line = raw[..eol];
            var semicolon = line.IndexOf((byte)';');
            var sizeText = (semicolon < 0 ? line : line[..semicolon]).Trim((byte)' ');
            if (sizeText.IsEmpty || sizeText.Length > 8 || !int.TryParse(sizeText, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var size))
            {
                return -1;
            }

            raw = raw[(eol + 2)..];
            if (size == 0)
            {
                // Trailer fields, each a line, until the empty line.
                while (true)
                {
                    var end = raw.IndexOf("\r\n"u8);
                    if (end < 0)
                    {
                        return 0;
                    }

                    raw = raw[(end + 2)..];
                    if (end == 0)
                    {
                        body = output.WrittenSpan.ToArray();
                        return 1;
                    }
                }
            }

            if (output.WrittenCount + size > max)
            {
                return -2;
            }

            if (raw.Length < size + 2)
            {
                return 0;
            }

            if (!raw.Slice(size, 2).SequenceEqual("\r\n"u8))
            {
                return -1;
            }

            output.Write(raw[..size]);
            raw = raw[(size + 2)..];
        }
    }
}
