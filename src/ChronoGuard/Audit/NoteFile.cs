using System.Text;

namespace ChronoGuard.Audit;

/// <summary>
/// The small state files beside the log (<c>seq-mark</c>, <c>repair-pending</c>): one <c>key value</c>
/// line each, read leniently (an unknown or malformed line is skipped, the caller decides what a missing
/// key means) and replaced atomically, so a full disk or a crash leaves the old file whole.
/// </summary>
internal static class NoteFile
{
    /// <summary>The file's keys and values; null when there is no file.</summary>
    public static Dictionary<string, string>? Read(string path)
    {
        if (!File.Exists(path))
        {
            return null;
        }

        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in File.ReadAllLines(path))
        {
            var space = line.IndexOf(' ', StringComparison.Ordinal);
            if (space > 0)
            {
                values[line[..space]] = line[(space + 1)..];
            }
        }

        return values;
    }

    /// <summary>Writes the pairs whose value is not null, each on one line; throws the I/O error (the old file stays whole).</summary>
    public static void Write(string path, params (string Key, string? Value)[] pairs)
    {
        var text = new StringBuilder();
        foreach (var (key, value) in pairs)
        {
            if (value is not null)
            {
                text.Append(key).Append(' ').Append(value.ReplaceLineEndings(" ")).Append('\n');
            }
        }

        AtomicFile.Replace(path, Encoding.UTF8.GetBytes(text.ToString()));
    }
}
