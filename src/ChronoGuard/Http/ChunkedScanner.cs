using System.Buffers;

namespace ChronoGuard.Http;

/// <summary>
/// Validates a chunked body (RFC 9112 §7.1) as it streams so it can be relayed verbatim: the proxy
/// needs the message boundary (to reuse the connection) and must refuse malformed framing (a smuggling
/// vector: a next hop that reads the framing differently sees a second request), but has no reason to
/// re-encode chunks. Data is skipped in bulk; only chunk lines and trailers are walked byte by byte,
/// and the first byte that cannot belong to a valid body is reported with everything before it.
/// </summary>
internal struct ChunkedScanner
{
    /// <summary>16 hex digits is 64 bits; any more (leading zeros included) only pads a line.</summary>
    public const int MaxSizeDigits = 16;

    /// <summary>Nothing we relay to uses extensions; the bounds keep a body from being mostly framing.</summary>
    public const int MaxExtensionBytesPerLine = 4 * 1024;
    public const int MaxExtensionBytesPerBody = 64 * 1024;

    /// <summary>The same order as a head: trailers are header fields (RFC 9110 §6.5).</summary>
    public const int MaxTrailerBytes = 16 * 1024;

    private State _state;
    private long _remaining;
    private int _digits;
    private int _lineExtensionBytes;
    private int _bodyExtensionBytes;
    private int _trailerBytes;

    private enum State : byte
    {
        Size,
        SizeWhitespace,
        ExtensionNameStart,
        ExtensionName,
        ExtensionNameWhitespace,
        ExtensionValueStart,
        ExtensionToken,
        ExtensionQuoted,
        ExtensionQuotedPair,
        ExtensionValueEnd,
        ExtensionValueWhitespace,
        LineLf,
        Data,
        DataCr,
        DataLf,
        TrailerStart,
        TrailerName,
        TrailerValue,
        TrailerLf,
        FinalLf,
        Done,
    }

    public readonly bool IsDone => _state == State.Done;

    /// <summary>Whether the next byte is chunk data (lets a caller, and the tests, tell data from framing).</summary>
    public readonly bool InData => _state == State.Data;

    /// <summary>
    /// Walks <paramref name="input"/>. <paramref name="consumed"/> is how much of it belongs to the body:
    /// on success up to the end of the body (or all of the input when the body goes on); on an error,
    /// the valid bytes before the first bad one, so a caller relays exactly those and then refuses.
    /// </summary>
    public ParseError Scan(in ReadOnlySequence<byte> input, out long consumed)
    {
        consumed = 0;
        foreach (var memory in input)
        {
            var span = memory.Span;
            var i = 0;
            while ((uint)i < (uint)span.Length)
            {
                if (_state == State.Data)
                {
                    var take = (int)Math.Min(_remaining, span.Length - i);
                    i += take;
                    _remaining -= take;
                    if (_remaining == 0)
                    {
                        _state = State.DataCr;
                    }

                    continue;
                }

                if (_state == State.Done)
                {
                    consumed += i;
                    return ParseError.None;
                }

                var error = Step(span[i]);
                if (error != ParseError.None)
                {
                    consumed += i;
                    return error;
                }

                i++;
            }

            consumed += span.Length;
        }

        return ParseError.None;
    }

    private ParseError Step(byte b)
    {
        switch (_state)
        {
            case State.Size:
                return StepSize(b);
            case State.SizeWhitespace:
                // BWS is allowed only before a ';' (chunk-ext = *( BWS ";" ... )), not before the CRLF.
                return b switch
                {
                    (byte)' ' or (byte)'\t' => CountExtension(),
                    (byte)';' => Extension(State.ExtensionNameStart),
                    (byte)'\n' => ParseError.ChunkBareLf,
                    _ => ParseError.BadChunkSize,
                };
            case State.ExtensionNameStart:
                return b is (byte)' ' or (byte)'\t' ? CountExtension()
                    : HttpChars.IsTChar(b) ? Extension(State.ExtensionName)
                    : BadExtensionByte(b);
            case State.ExtensionName:
                return HttpChars.IsTChar(b) ? CountExtension() : b switch
                {
                    (byte)' ' or (byte)'\t' => Extension(State.ExtensionNameWhitespace),
                    (byte)'=' => Extension(State.ExtensionValueStart),
                    (byte)';' => Extension(State.ExtensionNameStart),
                    (byte)'\r' => LineEnd(),
                    _ => BadExtensionByte(b),
                };
            case State.ExtensionNameWhitespace:
                return b switch
                {
                    (byte)' ' or (byte)'\t' => CountExtension(),
                    (byte)'=' => Extension(State.ExtensionValueStart),
                    (byte)';' => Extension(State.ExtensionNameStart),
                    _ => BadExtensionByte(b),
                };
            case State.ExtensionValueStart:
                return b is (byte)' ' or (byte)'\t' ? CountExtension()
                    : b == (byte)'"' ? Extension(State.ExtensionQuoted)
                    : HttpChars.IsTChar(b) ? Extension(State.ExtensionToken)
                    : BadExtensionByte(b);
            case State.ExtensionToken:
                return HttpChars.IsTChar(b) ? CountExtension() : AfterValue(b);
            case State.ExtensionQuoted:
                return b == (byte)'"' ? Extension(State.ExtensionValueEnd)
                    : b == (byte)'\\' ? Extension(State.ExtensionQuotedPair)
                    : HttpChars.IsQdText(b) ? CountExtension()
                    : BadExtensionByte(b);
            case State.ExtensionQuotedPair:
                // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
                return b == (byte)'\t' || (b >= 0x20 && b != 0x7F) ? Extension(State.ExtensionQuoted) : BadExtensionByte(b);
            case State.ExtensionValueEnd:
                return AfterValue(b);
            case State.ExtensionValueWhitespace:
                return b switch
                {
                    (byte)' ' or (byte)'\t' => CountExtension(),
                    (byte)';' => Extension(State.ExtensionNameStart),
                    _ => BadExtensionByte(b),
                };
            case State.LineLf:
                if (b != (byte)'\n')
                {
                    return ParseError.ChunkBareCr;
                }

                _digits = 0;
                _lineExtensionBytes = 0;
                _state = _remaining == 0 ? State.TrailerStart : State.Data;
                return ParseError.None;
            case State.DataCr:
                return b == (byte)'\r' ? Next(State.DataLf)
                    : b == (byte)'\n' ? ParseError.ChunkBareLf
                    : ParseError.ChunkDataOverrun;
            case State.DataLf:
                return b == (byte)'\n' ? Next(State.Size) : ParseError.ChunkBareCr;
            case State.TrailerStart:
                if (++_trailerBytes > MaxTrailerBytes)
                {
                    return ParseError.TrailerTooLarge;
                }

                return b == (byte)'\r' ? Next(State.FinalLf)
                    : b == (byte)'\n' ? ParseError.ChunkBareLf
                    : HttpChars.IsTChar(b) ? Next(State.TrailerName)
                    : ParseError.BadTrailer; // obs-fold, whitespace or an empty name
            case State.TrailerName:
                if (++_trailerBytes > MaxTrailerBytes)
                {
                    return ParseError.TrailerTooLarge;
                }

                return HttpChars.IsTChar(b) ? ParseError.None
                    : b == (byte)':' ? Next(State.TrailerValue)
                    : b == (byte)'\n' ? ParseError.ChunkBareLf
                    : ParseError.BadTrailer; // whitespace before the colon, no colon, a control byte
            case State.TrailerValue:
                if (++_trailerBytes > MaxTrailerBytes)
                {
                    return ParseError.TrailerTooLarge;
                }

                return b == (byte)'\r' ? Next(State.TrailerLf)
                    : b == (byte)'\n' ? ParseError.ChunkBareLf
                    : HttpChars.IsFieldValueByte(b) ? ParseError.None
                    : ParseError.BadTrailer;
            case State.TrailerLf:
                if (++_trailerBytes > MaxTrailerBytes)
                {
                    return ParseError.TrailerTooLarge;
                }

                return b == (byte)'\n' ? Next(State.TrailerStart) : ParseError.ChunkBareCr;
            case State.FinalLf:
                return b == (byte)'\n' ? Next(State.Done) : ParseError.ChunkBareCr;
            default:
                // Data and Done never reach here (Scan handles them), so this is unreachable.
                return ParseError.BadChunkSize;
        }
    }

    private ParseError StepSize(byte b)
    {
        var v = HexValue(b);
        if (v >= 0)
        {
            // Checked before the shift: the top nibble must be free for the size to stay a positive long.
            if (++_digits > MaxSizeDigits || (_remaining >> 59) != 0)
            {
                return ParseError.ChunkSizeTooLarge;
            }

            _remaining = (_remaining << 4) | (uint)v;
            return ParseError.None;
        }

        if (_digits == 0)
        {
            // A leading space or tab, a sign, an empty size: no lenient reading here.
            return b == (byte)'\n' ? ParseError.ChunkBareLf : ParseError.BadChunkSize;
        }

        return b switch
        {
            (byte)'\r' => Next(State.LineLf),
            (byte)';' => Extension(State.ExtensionNameStart),
            (byte)' ' or (byte)'\t' => Extension(State.SizeWhitespace),
            (byte)'\n' => ParseError.ChunkBareLf,
            _ => ParseError.BadChunkSize,
        };
    }

    private ParseError AfterValue(byte b) => b switch
    {
        (byte)';' => Extension(State.ExtensionNameStart),
        (byte)' ' or (byte)'\t' => Extension(State.ExtensionValueWhitespace),
        (byte)'\r' => LineEnd(),
        _ => BadExtensionByte(b),
    };

    private ParseError LineEnd()
    {
        _state = State.LineLf;
        return ParseError.None;
    }

    private ParseError Next(State state)
    {
        _state = state;
        return ParseError.None;
    }

    private ParseError Extension(State state)
    {
        _state = state;
        return CountExtension();
    }

    private ParseError CountExtension() =>
        ++_lineExtensionBytes > MaxExtensionBytesPerLine || ++_bodyExtensionBytes > MaxExtensionBytesPerBody
            ? ParseError.ChunkExtensionTooLong
            : ParseError.None;

    private static ParseError BadExtensionByte(byte b) => b == (byte)'\n' ? ParseError.ChunkBareLf : ParseError.BadChunkExtension;

    private static int HexValue(byte b)
    {
        if ((uint)(b - '0') <= 9)
        {
            return b - '0';
        }

        var lower = (uint)((b | 0x20) - 'a');
        return lower <= 5 ? (int)lower + 10 : -1;
    }
}
