namespace ChronoGuard.Tests.Http;

/// <summary>
/// A naive chunked-body decoder over the whole input (RFC 9112 §7.1), written as recursive descent
/// over the grammar rather than as the scanner's state machine: where the body ends, its decoded
/// bytes, or the reason and offset of the first byte that cannot belong to a valid body.
/// </summary>
internal static class ChunkedReference
{
    public const string Incomplete = "incomplete";
    public const string Complete = "complete";

    public sealed record Result(string Outcome, long Position, byte[] Body);

    private sealed class Stop(string outcome, long position) : Exception(outcome)
    {
        public string Outcome { get; } = outcome;
        public long Position { get; } = position;
    }

    public static Result Decode(byte[] s)
    {
        var body = new List<byte>();
        try
        {
            var length = Run(s, body);
            return new Result(Complete, length, body.ToArray());
        }
        catch (Stop stop)
        {
            return new Result(stop.Outcome, stop.Position, body.ToArray());
        }
    }

    private static int Run(byte[] s, List<byte> body)
    {
        var pos = 0;
        var bodyExtension = 0;
        while (true)
        {
            var lineExtension = 0;
            void CountExtension(int at)
            {
                if (++lineExtension > 4096 || ++bodyExtension > 65536)
                {
                    throw new Stop("chunk_extension_too_long", at);
                }
            }

            byte At(int p) => p < s.Length ? s[p] : throw new Stop(Incomplete, s.Length);

            // chunk-size = 1*HEXDIG, bounded to 16 digits and to a positive 64-bit value.
            UInt128 size = 0;
            var digits = 0;
            while (Uri.IsHexDigit((char)At(pos)))
            {
                digits++;
                size = (size * 16) + (UInt128)Convert.ToInt32(((char)s[pos]).ToString(), 16);
                if (digits > 16 || size > long.MaxValue)
                {
                    throw new Stop("chunk_size_too_large", pos);
                }

                pos++;
            }

            if (digits == 0)
            {
                throw new Stop(s[pos] == '\n' ? "chunk_bare_lf" : "bad_chunk_size", pos);
            }

            // chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )
            var first = true;
            var pendingWhitespace = false;
            while (true)
            {
                var whitespace = pendingWhitespace;
                pendingWhitespace = false;
                while (At(pos) is (byte)' ' or (byte)'\t')
                {
                    CountExtension(pos);
                    whitespace = true;
                    pos++;
                }

                if (s[pos] == ';')
                {
                    CountExtension(pos++);
                }
                else if (s[pos] == '\r' && !whitespace)
                {
                    pos++;
                    break;
                }
                else
                {
                    throw new Stop(s[pos] == '\n' ? "chunk_bare_lf" : first ? "bad_chunk_size" : "bad_chunk_extension", pos);
                }

                first = false;
                while (At(pos) is (byte)' ' or (byte)'\t')
                {
                    CountExtension(pos++);
                }

                if (!IsTChar(s[pos]))
                {
                    throw BadExtension(s, pos);
                }

                while (IsTChar(At(pos)))
                {
                    CountExtension(pos++);
                }

                while (At(pos) is (byte)' ' or (byte)'\t')
                {
                    CountExtension(pos++);
                    pendingWhitespace = true;
                }

                if (s[pos] != '=')
                {
                    continue;
                }

                pendingWhitespace = false;
                CountExtension(pos++);
                while (At(pos) is (byte)' ' or (byte)'\t')
                {
                    CountExtension(pos++);
                }

                if (s[pos] == '"')
                {
                    CountExtension(pos++);
                    while (true)
                    {
                        var c = At(pos);
                        if (c == '"')
                        {
                            CountExtension(pos++);
                            break;
                        }

                        if (c == '\\')
                        {
                            CountExtension(pos++);
                            var e = At(pos);
                            if (e != '\t' && (e < 0x20 || e == 0x7F))
                            {
                                throw BadExtension(s, pos);
                            }

                            CountExtension(pos++);
                            continue;
                        }

                        if ((c < 0x20 && c != '\t') || c == 0x7F)
                        {
                            throw BadExtension(s, pos);
                        }

                        CountExtension(pos++);
                    }
                }
                else if (IsTChar(s[pos]))
                {
                    while (IsTChar(At(pos)))
                    {
                        CountExtension(pos++);
                    }
                }
                else
                {
                    throw BadExtension(s, pos);
                }
            }

            if (At(pos) != '\n')
            {
                throw new Stop("chunk_bare_cr", pos);
            }

            pos++;
            if (size == 0)
            {
                break;
            }

            var n = (long)size;
            if (s.Length - pos < n)
            {
                body.AddRange(s.AsSpan(pos).ToArray());
                throw new Stop(Incomplete, s.Length);
            }

            body.AddRange(s.AsSpan(pos, (int)n).ToArray());
            pos += (int)n;
            var end = At(pos);
            if (end != '\r')
            {
                throw new Stop(end == '\n' ? "chunk_bare_lf" : "chunk_data_overrun", pos);
            }

            if (At(++pos) != '\n')
            {
                throw new Stop("chunk_bare_cr", pos);
            }

            pos++;
        }

        // trailer-section = *( field-line CRLF ) CRLF, at most 16 KiB before the final CRLF's LF.
        var trailer = 0;
        void CountTrailer(int at)
        {
            if (++trailer > 16384)
            {
                throw new Stop("trailer_too_large", at);
            }
        }

        byte Next(int p) => p < s.Length ? s[p] : throw new Stop(Incomplete, s.Length);
        while (true)
        {
            var c = Next(pos);
            CountTrailer(pos);
            if (c == '\r')
            {
                if (Next(pos + 1) != '\n')
                {
                    throw new Stop("chunk_bare_cr", pos + 1);
                }

                return pos + 2;
            }

            if (!IsTChar(c))
            {
                throw new Stop(c == '\n' ? "chunk_bare_lf" : "bad_trailer", pos);
            }

            pos++;
            while (true)
            {
                c = Next(pos);
                CountTrailer(pos);
                if (c == ':')
                {
                    pos++;
                    break;
                }

                if (!IsTChar(c))
                {
                    throw new Stop(c == '\n' ? "chunk_bare_lf" : "bad_trailer", pos);
                }

                pos++;
            }

            while (true)
            {
                c = Next(pos);
                CountTrailer(pos);
                if (c == '\r')
                {
                    pos++;
                    break;
                }

                if (c == '\n')
                {
                    throw new Stop("chunk_bare_lf", pos);
                }

                if ((c < 0x20 && c != '\t') || c == 0x7F)
                {
                    throw new Stop("bad_trailer", pos);
                }

                pos++;
            }

            c = Next(pos);
            CountTrailer(pos);
            if (c != '\n')
            {
                throw new Stop("chunk_bare_cr", pos);
            }

            pos++;
        }
    }

    private static Stop BadExtension(byte[] s, int pos) => new(s[pos] == '\n' ? "chunk_bare_lf" : "bad_chunk_extension", pos);

    private static bool IsTChar(byte c) =>
        c is >= (byte)'a' and <= (byte)'z' or >= (byte)'A' and <= (byte)'Z' or >= (byte)'0' and <= (byte)'9'
        || "!#$%&'*+-.^_`|~".Contains((char)c, StringComparison.Ordinal);
}
