using System.Globalization;

namespace ChronoGuard.Audit;

/// <summary>
/// The <c>repair-pending</c> file <c>audit repair</c> leaves behind: the last good seq and hash the
/// repaired log ends at, and the sentence the next start writes as a chained <c>system</c> record
/// (<c>reason=repair</c>). The writer deletes it once that record is committed.
/// </summary>
internal sealed record AuditRepairNote(long LastSeq, string LastHash, string Detail)
{
    public const string FileName = "repair-pending";

    public static AuditRepairNote? Read(string directory)
    {
        var file = Path.Combine(directory, FileName);
        if (!File.Exists(file))
        {
            return null;
        }

        long seq = -1;
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
                case "detail": detail = value; break;
            }
        }

        return new AuditRepairNote(seq, hash, detail);
    }

    public void Write(string directory) =>
        File.WriteAllText(Path.Combine(directory, FileName), $"seq {LastSeq.ToString(CultureInfo.InvariantCulture)}\nhash {LastHash}\ndetail {Detail}\n");

    public static void Delete(string directory) => File.Delete(Path.Combine(directory, FileName));
}
