using System.Globalization;
using ChronoGuard.Audit;
using ChronoGuard.Policy;

namespace ChronoGuard.Sidecar.Cli;

/// <summary><c>chronoguard policy suggest --audit-dir D [--since T] [--agent A]</c>: a policy draft from what the log shows (SPEC §9).</summary>
internal static class PolicySuggestCommand
{
    public const string Usage = "usage: chronoguard policy suggest --audit-dir DIR [--since T] [--agent A]   (T: ISO-8601, a date, or 90s, 10m, 1h, 7d ago)";

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr, DateTimeOffset? now = null)
    {
        string? dir = null, agent = null;
        DateTimeOffset? since = null;
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] is "--help" or "-h")
            {
                stdout.WriteLine(Usage);
                return CommandLine.Ok;
            }

            if (args[i] is not ("--audit-dir" or "--since" or "--agent"))
            {
                stderr.WriteLine(args[i].StartsWith('-') ? $"policy suggest: unknown option '{args[i]}' ({Usage})" : $"policy suggest: unexpected argument '{args[i]}' ({Usage})");
                return CommandLine.UsageError;
            }

            if (i + 1 >= args.Length)
            {
                stderr.WriteLine($"policy suggest: {args[i]} needs a value");
                return CommandLine.UsageError;
            }

            var value = args[++i];
            switch (args[i - 1])
            {
                case "--audit-dir": dir = value; break;
                case "--agent": agent = value; break;
                default:
                    if (ParseTime(value, now ?? DateTimeOffset.UtcNow) is not { } t)
                    {
                        stderr.WriteLine($"policy suggest: --since '{value}' is not a time (ISO-8601, a date, or relative: 90s, 10m, 1h, 7d)");
                        return CommandLine.UsageError;
                    }

                    since = t;
                    break;
            }
        }

        if (dir is null)
        {
            stderr.WriteLine($"policy suggest: --audit-dir DIR is required ({Usage})");
            return CommandLine.UsageError;
        }

        if (!Directory.Exists(dir))
        {
            stderr.WriteLine($"policy suggest: {dir}: {(File.Exists(dir) ? "is a file, not an audit directory" : "directory not found")}");
            return CommandLine.UsageError;
        }

        var draft = new PolicyDraft();
        try
        {
            foreach (var item in AuditReader.ReadDirectory(dir))
            {
                if (item.Entry is not { } entry)
                {
                    // A draft from part of a log would look complete: refuse, as export does.
                    stderr.WriteLine($"policy suggest: the log is damaged: {(item.Seq >= 0 ? $"seq {item.Seq} at " : string.Empty)}{item.Where}: {item.Problem}; run chronoguard verify");
                    return CommandLine.CheckFailed;
                }

                if ((since is null || entry.Time >= since) && (agent is null || entry.Agent == agent))
                {
                    draft.Add(entry);
                }
            }
        }
        catch (Exception ex) when (IoErrors.IsIo(ex))
        {
            stderr.WriteLine("policy suggest: " + IoErrors.Line(dir, ex));
            return CommandLine.UsageError;
        }
        catch (FASTER.core.FasterException ex)
        {
            stderr.WriteLine($"policy suggest: {dir}: the audit log cannot be read: {ex.Message.ReplaceLineEndings(" ")}");
            return CommandLine.UsageError;
        }

        if (draft.Agents == 0)
        {
            stderr.WriteLine($"policy suggest: {dir}: no decision records about destinations{(since is null ? string.Empty : " since " + since.Value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture))}{(agent is null ? string.Empty : " for agent " + agent)}; the draft allows nothing");
        }

        stdout.Write(draft.Render(dir));
        return CommandLine.Ok;
    }

    /// <summary>SPEC §3's <c>T</c>: ISO-8601 (no zone = UTC), a date, or relative (<c>90s</c>, <c>10m</c>, <c>1h</c>, <c>7d</c> before now).</summary>
    internal static DateTimeOffset? ParseTime(string text, DateTimeOffset now)
    {
        if (text.Length >= 2 && long.TryParse(text.AsSpan(0, text.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n <= 36_500L * 86_400)
        {
            var unit = text[^1] switch { 's' => 1L, 'm' => 60L, 'h' => 3600L, 'd' => 86_400L, _ => 0L };
            if (unit != 0 && n * unit <= 36_500L * 86_400)
            {
                return now - TimeSpan.FromSeconds(n * unit);
            }
        }

        return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t) ? t : null;
    }
}
