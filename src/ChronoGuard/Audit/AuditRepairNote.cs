using System.Globalization;

namespace ChronoGuard.Audit;

/// <summary>
/// The <c>repair-pending</c> file <c>audit repair</c> leaves behind: the last good seq and hash the
/// repaired log ends at, and the sentence the next start writes as a chained <c>system</c> record
/// (<c>reason=repair</c>) at <see cref="NextSeq"/>, above every seq handed out before the damage, so a
/// seq signed or promised before it is never given to another record. The writer deletes it once that
/// record is committed.
/// </summary>
internal sealed record AuditRepairNote(long LastSeq, string LastHash, string Detail)
{
    /// <summary>The repair record's seq (-1 in a note written before this line existed: right after LastSeq).</summary>
    public long NextSeq { get; init; } = -1;

    public const string FileName = "repair-pending";

    public static AuditRepairNote? Read(string directory)
    {
        if (NoteFile.Read(Path.Combine(directory, FileName)) is not { } values)
        {
            return null;
        }

        long seq = -1, next = -1;
        _ = values.TryGetValue("seq", out var text) && long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out seq);
        _ = values.TryGetValue("next", out text) && long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out next);
        return new AuditRepairNote(seq, values.GetValueOrDefault("hash", string.Empty).Trim(), values.GetValueOrDefault("detail", string.Empty)) { NextSeq = next };
    }

    /// <summary>Replaced atomically, like every file beside the log: a failed write keeps the old note whole.</summary>
    public void Write(string directory) => NoteFile.Write(
        Path.Combine(directory, FileName),
        ("seq", LastSeq.ToString(CultureInfo.InvariantCulture)),
        ("hash", LastHash),
        ("next", NextSeq.ToString(CultureInfo.InvariantCulture)),
        ("detail", Detail));

    public static void Delete(string directory) => File.Delete(Path.Combine(directory, FileName));
}
