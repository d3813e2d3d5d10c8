using System.Globalization;
using ChronoGuard.Audit;
using ChronoGuard.Policy;

namespace ChronoGuard.Sidecar.Cli;

/// <summary>
/// The record filters of <c>export</c> (SPEC §3): each given filter must hold; a comma list matches any
/// of its values. A value that can never match (an unknown decision, an unreadable time) is refused at
/// parse time, so a typo is a usage error instead of an empty export that looks like "nothing happened".
/// </summary>
internal sealed class ExportFilter
{
    private string[]? _decisions;
    private string[]? _notDecisions;
    private string[]? _reasons;
    private string[]? _hosts;

    public string? Agent { get; private set; }

    public DateTimeOffset? Since { get; private set; }

    public DateTimeOffset? Until { get; private set; }

    /// <summary>Applies one option; false when <paramref name="option"/> is not a filter. Throws <see cref="ArgumentException"/> (the line to print) for a bad value.</summary>
    public bool TrySet(string option, string value, DateTimeOffset now)
    {
        switch (option)
        {
            case "--agent": Agent = value; return true;
            case "--since": Since = Time(option, value, now); return true;
            case "--until": Until = Time(option, value, now); return true;
            case "--decision": _decisions = Decisions(option, value); return true;
            case "--not-decision": _notDecisions = Decisions(option, value); return true;
            case "--reason": _reasons = List(option, value); return true;
            case "--host": _hosts = List(option, value).Select(h => h.TrimEnd('.')).ToArray(); return true;
            default: return false;
        }
    }

    public bool Keep(AuditEntry e) =>
        (Since is null || e.Time >= Since) && (Until is null || e.Time < Until)
        && (Agent is null || e.Agent == Agent)
        && (_decisions is null || Array.Exists(_decisions, d => string.Equals(e.Decision, d, StringComparison.Ordinal)))
        && (_notDecisions is null || !Array.Exists(_notDecisions, d => string.Equals(e.Decision, d, StringComparison.Ordinal)))
        && (_reasons is null || Array.Exists(_reasons, r => Glob(r, e.Reason)))
        && (_hosts is null || Array.Exists(_hosts, h => Glob(h, e.Host.TrimEnd('.'))));

    /// <summary>
    /// ISO-8601 (no zone = UTC), a date, or relative before now: <c>90s</c>, <c>10m</c>, <c>1h</c>, <c>7d</c>.
    /// </summary>
    public static DateTimeOffset Time(string option, string value, DateTimeOffset now)
    {
        if (value.Length >= 2 && value[^1] is 's' or 'm' or 'h' or 'd'
            && long.TryParse(value.AsSpan(0, value.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var n))
        {
            var unit = value[^1] switch
            {
                's' => TimeSpan.TicksPerSecond,
                'm' => TimeSpan.TicksPerMinute,
                'h' => TimeSpan.TicksPerHour,
                _ => TimeSpan.TicksPerDay,
            };
            // Past the start of the calendar is simply "everything".
            return n > (now - DateTimeOffset.MinValue).Ticks / unit ? DateTimeOffset.MinValue : now.AddTicks(-n * unit);
        }

        return DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t)
            ? t
            : throw new ArgumentException($"{option} '{value}' is not a time (ISO-8601 such as 2026-12-05T10:00:00Z, a date, or relative: 90s, 10m, 1h, 7d)");
    }

    private static string[] Decisions(string option, string value)
    {
        var names = List(option, value);
        for (var i = 0; i < names.Length; i++)
        {
            if (!DecisionNames.TryParse(names[i], out var d))
            {
                var all = Enumerable.Range(0, DecisionNames.Count).Select(k => DecisionNames.Name((Decision)k)).ToArray();
                var near = CommandHelp.Nearest(names[i], all);
                throw new ArgumentException($"{option}: '{names[i]}' is not a decision{(near is null ? string.Empty : $" (did you mean {near}?)")}; decisions are {string.Join(", ", all)}");
            }

            names[i] = DecisionNames.Name(d);
        }

        return names;
    }

    private static string[] List(string option, string value)
    {
        var items = value.Split(',', StringSplitOptions.TrimEntries);
        return Array.Exists(items, i => i.Length == 0)
            ? throw new ArgumentException($"{option} '{value}' has an empty item (a comma list such as A,B)")
            : items;
    }

    /// <summary>Case-insensitive match where <c>*</c> stands for any run of characters (none included).</summary>
    internal static bool Glob(ReadOnlySpan<char> pattern, ReadOnlySpan<char> text)
    {
        // Greedy with one backtrack point: linear in practice, never exponential.
        int p = 0, t = 0, star = -1, mark = 0;
        while (t < text.Length)
        {
            if (p < pattern.Length && pattern[p] == '*')
            {
                star = p++;
                mark = t;
            }
            else if (p < pattern.Length && char.ToLowerInvariant(pattern[p]) == char.ToLowerInvariant(text[t]))
            {
                p++;
                t++;
            }
            else if (star >= 0)
            {
                p = star + 1;
                t = ++mark;
            }
            else
            {
                return false;
            }
        }

        while (p < pattern.Length && pattern[p] == '*')
        {
            p++;
        }

        return p == pattern.Length;
    }
}
