using System.Globalization;
using System.Text;

namespace ChronoGuard.Audit;

/// <summary>
/// The <c>head</c> file: the chain's id and the last seq/hash the writer knew to be committed, written
/// (rename over) at most once per interval after a commit and at stop. It lives beside the log but
/// outside FASTER's files, so losing or damaging the log does not take it along: a start that finds it
/// ahead of the readable log refuses instead of restarting the chain. It lags the log by up to one
/// interval after a crash, so it never claims more than was committed. It is no defence against
/// someone who can rewrite the directory (they can rewrite this file too): signed checkpoints are.
/// </summary>
internal sealed record AuditHeadMarker(string ChainId, long Seq, string Hash)
{
    public const string FileName = "head";

    public static AuditHeadMarker? Read(string directory)
    {
        var file = Path.Combine(directory, FileName);
        if (!File.Exists(file))
        {
            return null;
        }

        string? chain = null, hash = null;
        long seq = -2;
        foreach (var line in File.ReadAllLines(file))
        {
            var space = line.IndexOf(' ', StringComparison.Ordinal);
            if (space <= 0)
            {
                continue;
            }

            var value = line[(space + 1)..].Trim();
            switch (line[..space])
            {
                case "chain": chain = value; break;
                case "seq": _ = long.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out seq); break;
                case "hash": hash = value; break;
            }
        }

        // A head file that does not parse is itself damage: treat it as claiming a chain whose end is unknown.
        return chain is null || hash is null || seq < -1 ? new AuditHeadMarker(chain ?? "unknown", long.MaxValue, string.Empty) : new AuditHeadMarker(chain, seq, hash);
    }

    public static string NewChainId() => Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));

    /// <summary>Replaces the file atomically (temp file, fsync, rename, fsync dir); throws the I/O error, the old file kept.</summary>
    public void Write(string directory)
    {
        var text = new StringBuilder()
            .Append("chain ").Append(ChainId).Append('\n')
            .Append("seq ").Append(Seq.ToString(CultureInfo.InvariantCulture)).Append('\n')
            .Append("hash ").Append(Hash).Append('\n')
            .Append("updated ").Append(DateTimeOffset.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture)).Append('\n')
            .ToString();
        AtomicFile.Replace(Path.Combine(directory, FileName), Encoding.UTF8.GetBytes(text));
    }
}
