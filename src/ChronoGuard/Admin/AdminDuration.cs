using System.Globalization;

namespace ChronoGuard.Admin;

/// <summary>SPEC §3's relative time: <c>90s</c>, <c>10m</c>, <c>1h</c>, <c>7d</c> (a whole number and one unit, at most 100 years).</summary>
internal static class AdminDuration
{
    public static bool TryParse(string? text, out TimeSpan duration)
    {
        duration = default;
        if (text is null || text.Length < 2 || !long.TryParse(text.AsSpan(0, text.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var n))
        {
            return false;
        }

        var unit = text[^1] switch { 's' => 1L, 'm' => 60L, 'h' => 3600L, 'd' => 86_400L, _ => 0L };
        if (unit == 0 || n == 0 || n > 36_500L * 86_400 / unit)
        {
            return false;
        }

        duration = TimeSpan.FromSeconds(n * unit);
        return true;
    }
}
