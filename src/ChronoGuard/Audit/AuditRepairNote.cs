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
        var file = Path.Combine(directory, FileName);
        if (!File.Exists(file))
        {
            return null;
        }

        long seq = -1, next = -1;
        string hash = string.Empty, detail = string.Empty;
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
                case "seq": _ = long.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out seq); break;
                case "hash": hash = value.Trim(); break;
                case "next": _ = long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out next); break;
                case "detail": detail = value; break;
            }
        }

        return new AuditRepairNote(seq, hash, detail) { NextSeq = next };
    }

    public void Write(string directory) =>
        File.WriteAllText(Path.Combine(directory, FileName), $"seq {LastSeq.ToString(CultureInfo.InvariantCulture)}\nhash {LastHash}\nnext {NextSeq.ToString(CultureInfo.InvariantCulture)}\ndetail {Detail}\n");

    public static void Delete(string directory) => File.Delete(Path.Combine(directory, FileName));
}
