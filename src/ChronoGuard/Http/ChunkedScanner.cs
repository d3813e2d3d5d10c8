using System.Buffers;

namespace ChronoGuard.Http;

/// <summary>
/// Validates a chunked body as it streams so it can be relayed verbatim: the proxy needs the message
/// boundary (to reuse the connection) and must refuse malformed framing (a smuggling vector), but has
/// no reason to re-encode chunks. Data is skipped in bulk; only size and trailer lines are walked.
/// </summary>
internal struct ChunkedScanner
{
    private const int MaxLineBytes = 4096;
    private const int MaxTrailerBytes = 16384;

    private State _state;
    private long _remaining;
    private int _digits;
    private int _lineBytes;
    private int _trailerBytes;

    private enum State : byte
    {
        Size,
        Extension,
        SizeLf,
        Data,
        DataCr,
        DataLf,
        TrailerStart,
        TrailerLine,
        TrailerLf,
        FinalLf,
        Done,
    }

    public readonly bool IsDone => _state == State.Done;

    /// <summary>Walks <paramref name="input"/>; <paramref name="consumed"/> is how much belongs to the body.</summary>
    public ParseError Scan(in ReadOnlySequence<byte> input, out long consumed)
    {
        var reader = new SequenceReader<byte>(input);
        while (_state != State.Done && !reader.End)
        {
            if (_state == State.Data)
            {
                var take = Math.Min(_remaining, reader.Remaining);
                reader.Advance(take);
                _remaining -= take;
                if (_remaining == 0)
                {
                    _state = State.DataCr;
                }

                continue;
            }

            reader.TryRead(out var b);
            var err = Step(b);
            if (err != ParseError.None)
            {
                consumed = reader.Consumed;
                return err;
            }
        }

        consumed = reader.Consumed;
        return ParseError.None;
    }

    private ParseError Step(byte b)
    {
        switch (_state)
        {
            case State.Size:
                var v = HexValue(b);
                if (v >= 0)
                {
                    // 15 hex digits is 2^60 bytes; more is an overflow attempt, not a real chunk.
                    if (++_digits > 15)
                    {
                        return ParseError.BadChunkSize;
                    }

                    _remaining = (_remaining << 4) | (uint)v;
                    return ParseError.None;
                }

                if (_digits == 0)
                {
                    return ParseError.BadChunkSize;
                }

                _lineBytes = _digits;
                if (b == (byte)';')
                {
                    _state = State.Extension;
                    return ParseError.None;
                }

                if (b == (byte)'\r')
                {
                    _state = State.SizeLf;
                    return ParseError.None;
                }

                return ParseError.BadChunkSize;
            case State.Extension:
                if (b == (byte)'\r')
                {
                    _state = State.SizeLf;
                    return ParseError.None;
                }

                return (++_lineBytes > MaxLineBytes || IsInvalidLineByte(b)) ? ParseError.BadChunkSize : ParseError.None;
            case State.SizeLf:
                if (b != (byte)'\n')
                {
                    return ParseError.BadChunkSize;
                }

                _digits = 0;
                _state = _remaining == 0 ? State.TrailerStart : State.Data;
                return ParseError.None;
            case State.DataCr:
                if (b != (byte)'\r')
                {
                    return ParseError.BadChunkSize;
                }

                _state = State.DataLf;
                return ParseError.None;
            case State.DataLf:
                if (b != (byte)'\n')
                {
                    return ParseError.BadChunkSize;
                }

                _state = State.Size;
                return ParseError.None;
            case State.TrailerStart:
                if (b == (byte)'\r')
                {
                    _state = State.FinalLf;
                    return ParseError.None;
                }

                _state = State.TrailerLine;
                return CountTrailer(b);
            case State.TrailerLine:
                if (b == (byte)'\r')
                {
                    _state = State.TrailerLf;
                    return ParseError.None;
                }

                return CountTrailer(b);
            case State.TrailerLf:
                if (b != (byte)'\n')
                {
                    return ParseError.BadChunkSize;
                }

                _state = State.TrailerStart;
                return ParseError.None;
            case State.FinalLf:
                if (b != (byte)'\n')
                {
                    return ParseError.BadChunkSize;
                }

                _state = State.Done;
                return ParseError.None;
            default:
                return ParseError.BadChunkSize;
        }
    }

    private ParseError CountTrailer(byte b) =>
        (++_trailerBytes > MaxTrailerBytes || IsInvalidLineByte(b)) ? ParseError.BadChunkSize : ParseError.None;

    private static bool IsInvalidLineByte(byte b) => (b < 0x20 && b != (byte)'\t') || b == 0x7F;

    private static int HexValue(byte b) => b switch
    {
        >= (byte)'0' and <= (byte)'9' => b - '0',
        >= (byte)'a' and <= (byte)'f' => b - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => b - 'A' + 10,
        _ => -1,
    };
}
