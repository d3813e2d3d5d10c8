using System.Buffers;

namespace ChronoGuard.Http;

/// <summary>
/// Finds the end of a head as bytes arrive. New bytes are appended once to the head buffer and only
/// the unscanned tail is searched, so a client dribbling its head byte by byte costs linear work,
/// not quadratic (the slowloris shape the header timeout then ends).
/// </summary>
internal static class HeadReader
{
    /// <param name="buffer">Unconsumed input; it must start where the head starts.</param>
    /// <param name="head">Accumulation state and destination.</param>
    /// <param name="headEnd">When complete, the position just after the blank line.</param>
    public static HeadStatus TryRead(in ReadOnlySequence<byte> buffer, HttpHead head, out SequencePosition headEnd, out ParseError error)
    {
        error = ParseError.None;
        headEnd = buffer.Start;
        var available = (int)Math.Min(buffer.Length, head.MaxHeadBytes);
        if (available > head.Length)
        {
            buffer.Slice(head.Length, available - head.Length).CopyTo(head.Buffer.AsSpan(head.Length));
            head.Length = available;
        }

        var s = head.Buffer.AsSpan(0, head.Length);
        var i = head.Scanned;
        while (true)
        {
            var rel = s[i..].IndexOf((byte)'\n');
            if (rel < 0)
            {
                head.Scanned = s.Length;
                if (head.Length >= head.MaxHeadBytes)
                {
                    error = ParseError.HeadTooLarge;
                    return HeadStatus.Error;
                }

                return HeadStatus.Incomplete;
            }

            var lf = i + rel;
            // A bare LF is where request smuggling through lenient parsers starts: refuse it outright.
            if (lf == 0 || s[lf - 1] != (byte)'\r')
            {
                error = ParseError.BareLf;
                return HeadStatus.Error;
            }

            if (lf - 1 == head.LineStart)
            {
                if (head.LineStart == 0)
                {
                    error = ParseError.BadRequestLine;
                    return HeadStatus.Error;
                }

                head.Length = lf + 1;
                headEnd = buffer.GetPosition(head.Length);
                return HeadStatus.Complete;
            }

            head.LineStart = lf + 1;
            i = lf + 1;
        }
    }
}
