namespace ChronoGuard.Policy;

/// <summary>
/// When a policy's allowed domains may be reached: a bitmap of the 10,080 minutes of a week in the
/// policy's IANA time zone. Checking a moment converts it to local wall-clock time (so DST is correct
/// by construction: the bitmap is in wall-clock minutes) and tests one bit. The UTC offset is cached
/// per zone and recomputed only when the moment leaves the 15-minute slice it was computed for, which
/// also covers zones whose transitions fall on half hours.
/// </summary>
internal sealed class TimeWindow
{
    public const int MinutesPerWeek = 7 * 24 * 60;
    private const long SliceTicks = TimeSpan.TicksPerMinute * 15;

    private readonly ulong[] _bits;
    private OffsetCache? _cache;

    public TimeWindow(TimeZoneInfo zone, ulong[] bits)
    {
        Zone = zone;
        _bits = bits;
    }

    public TimeZoneInfo Zone { get; }

    /// <summary>Always open: used when a policy has no time restrictions.</summary>
    public static TimeWindow? None => null;

    /// <param name="days">0 = Sunday … 6 = Saturday, as <see cref="DayOfWeek"/>.</param>
    /// <param name="ranges">Start and end minute of day; end &lt;= start means the range crosses midnight.</param>
    public static TimeWindow Create(TimeZoneInfo zone, IReadOnlyList<DayOfWeek> days, IReadOnlyList<(int Start, int End)> ranges)
    {
        var bits = new ulong[(MinutesPerWeek + 63) / 64];
        foreach (var day in days)
        {
            var dayStart = (int)day * 1440;
            foreach (var (start, end) in ranges)
            {
                // A range belongs to the day it starts on; "22:00-06:00" on Friday runs into Saturday.
                var length = end > start ? end - start : (1440 - start) + end;
                for (var m = 0; m < length; m++)
                {
                    var minute = (dayStart + start + m) % MinutesPerWeek;
                    bits[minute >> 6] |= 1UL << (minute & 63);
                }
            }
        }

        return new TimeWindow(zone, bits);
    }

    public bool IsOpen(DateTimeOffset utcNow) => IsOpenAt(MinuteOfWeek(utcNow));

    public bool IsOpenAt(int minuteOfWeek) => (_bits[minuteOfWeek >> 6] & (1UL << (minuteOfWeek & 63))) != 0;

    /// <summary>Local wall-clock minute of the week (0 = Sunday 00:00) in the window's zone.</summary>
    public int MinuteOfWeek(DateTimeOffset utcNow)
    {
        var local = Local(utcNow);
        return ((int)local.DayOfWeek * 1440) + (local.Hour * 60) + local.Minute;
    }

    public DateTime Local(DateTimeOffset utcNow)
    {
        var ticks = utcNow.UtcTicks;
        var cache = Volatile.Read(ref _cache);
        if (cache is null || ticks < cache.SliceStart || ticks >= cache.SliceStart + SliceTicks)
        {
            var sliceStart = ticks - (ticks % SliceTicks);
            cache = new OffsetCache(sliceStart, Zone.GetUtcOffset(new DateTime(sliceStart, DateTimeKind.Utc)).Ticks);
            Volatile.Write(ref _cache, cache);
        }

        return new DateTime(ticks + cache.OffsetTicks, DateTimeKind.Unspecified);
    }

    /// <summary>
    /// The next moment (UTC) at or after <paramref name="utcNow"/> when the window is open, found by
    /// walking forward minute by minute in UTC, so spring-forward gaps and fall-back repeats are
    /// handled by the zone itself. Null when the window is never open.
    /// </summary>
    public DateTimeOffset? NextOpening(DateTimeOffset utcNow)
    {
        var t = new DateTimeOffset(utcNow.UtcTicks - (utcNow.UtcTicks % TimeSpan.TicksPerMinute), TimeSpan.Zero);
        // Eight days covers every week shape plus a DST shift.
        for (var i = 0; i <= (MinutesPerWeek + 1440) ; i++)
        {
            var candidate = t.AddMinutes(i);
            var local = TimeZoneInfo.ConvertTimeFromUtc(candidate.UtcDateTime, Zone);
            if (IsOpenAt(((int)local.DayOfWeek * 1440) + (local.Hour * 60) + local.Minute))
            {
                return candidate < utcNow ? utcNow : candidate;
            }
        }

        return null;
    }

    /// <summary>The next moment the window closes (for revoking tunnels); null when it never closes.</summary>
    public DateTimeOffset? NextClosing(DateTimeOffset utcNow)
    {
        var t = new DateTimeOffset(utcNow.UtcTicks - (utcNow.UtcTicks % TimeSpan.TicksPerMinute), TimeSpan.Zero);
        for (var i = 1; i <= MinutesPerWeek + 1440; i++)
        {
            var candidate = t.AddMinutes(i);
            var local = TimeZoneInfo.ConvertTimeFromUtc(candidate.UtcDateTime, Zone);
            if (!IsOpenAt(((int)local.DayOfWeek * 1440) + (local.Hour * 60) + local.Minute))
            {
                return candidate;
            }
        }

        return null;
    }

    private sealed record OffsetCache(long SliceStart, long OffsetTicks);
}
