using System.Globalization;

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
        if (NoteFile.Read(Path.Combine(directory, FileName)) is not { } values)
        {
            return null;
        }

        long next = -1, unrecorded = 0;
        _ = values.TryGetValue("next", out var text) && long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out next);
        _ = values.TryGetValue("unrecorded", out text) && long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out unrecorded);
        // A file that does not parse bounds nothing: the start then relies on the log and head file alone.
        return next < 0 ? null : new AuditSeqMark(next, values.GetValueOrDefault("cause"), values.GetValueOrDefault("fault"), unrecorded, values.GetValueOrDefault("unrecorded-detail"));
    }

    /// <summary>Replaces the file atomically; throws the I/O error (the old file stays whole).</summary>
    public void Write(string directory) => NoteFile.Write(
        Path.Combine(directory, FileName),
        ("next", Next.ToString(CultureInfo.InvariantCulture)),
        ("cause", Cause),
        ("fault", FaultNote),
        ("unrecorded", Unrecorded > 0 ? Unrecorded.ToString(CultureInfo.InvariantCulture) : null),
        ("unrecorded-detail", Unrecorded > 0 ? UnrecordedDetail : null));
}
