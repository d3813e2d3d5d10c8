using System.Globalization;
using System.Text;

namespace ChronoGuard.Audit;

/// <summary>
/// The <c>seq-mark</c> file: every seq the writer may have handed out (to a client in
/// <c>X-ChronoGuard-Audit-Seq</c>, or to a record) is below <see cref="Next"/>. The writer moves it
/// ahead in steps before the ring can give out seqs past it, and sets it exactly at a stop; a start
/// continues at or above it, and a chained <c>system</c> record (<c>reason=lost</c>) names every seq
/// between the last record and it, so a seq a client saw is never given to another record. A stop
/// that could not commit also leaves here why, and what its fault episode cost, for that record.
/// Replaced atomically (<see cref="AtomicFile"/>): a full disk keeps the previous, larger-or-equal bound.
/// </summary>
internal sealed record AuditSeqMark(long Next, string? Cause = null, string? FaultNote = null, long Unrecorded = 0, string? UnrecordedDetail = null)
{
    public const string FileName = "seq-mark";

    /// <summary>Null when there is no file (a log from before it, or a new directory).</summary>
    public static AuditSeqMark? Read(string directory)
    {
        var file = Path.Combine(directory, FileName);
        if (!File.Exists(file))
        {
            return null;
        }

        long next = -1, unrecorded = 0;
        string? cause = null, fault = null, detail = null;
        foreach (var line in File.ReadAllLines(file))
        {
            var space = line.IndexOf(' ', StringComparison.Ordinal);
            if (space <= 0)
            {
                continue;
            }

            var value = line[(space + 1)..];
            switch (line[..space])
            {
                case "next": _ = long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out next); break;
                case "cause": cause = value; break;
                case "fault": fault = value; break;
                case "unrecorded": _ = long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out unrecorded); break;
                case "unrecorded-detail": detail = value; break;
            }
        }

        // A file that does not parse bounds nothing: the start then relies on the log and head file alone.
        return next < 0 ? null : new AuditSeqMark(next, cause, fault, unrecorded, detail);
    }

    /// <summary>Replaces the file atomically; throws the I/O error (the old file stays whole).</summary>
    public void Write(string directory)
    {
        var text = new StringBuilder().Append("next ").Append(Next.ToString(CultureInfo.InvariantCulture)).Append('\n');
        Line(text, "cause", Cause);
        Line(text, "fault", FaultNote);
        if (Unrecorded > 0)
        {
            text.Append("unrecorded ").Append(Unrecorded.ToString(CultureInfo.InvariantCulture)).Append('\n');
            Line(text, "unrecorded-detail", UnrecordedDetail);
        }

        AtomicFile.Replace(Path.Combine(directory, FileName), Encoding.UTF8.GetBytes(text.ToString()));
    }

    private static void Line(StringBuilder text, string key, string? value)
    {
        if (value is not null)
        {
            text.Append(key).Append(' ').Append(value.ReplaceLineEndings(" ")).Append('\n');
        }
    }
}
