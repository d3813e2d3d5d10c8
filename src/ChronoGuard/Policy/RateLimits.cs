using System.Diagnostics;

namespace ChronoGuard.Policy;

/// <summary>A policy's per-minute, per-hour and per-day limits; absent limits are not checked.</summary>
internal sealed class RateLimits
{
    public static readonly long TicksPerSecond = Stopwatch.Frequency;

    public RateLimits(int? perMinute, int? perHour, int? perDay, int? burst)
    {
        // Burst sizes the minute bucket (short spikes); hour and day buckets hold their whole allowance.
        Minute = perMinute is { } m ? new Gcra(m, 60 * TicksPerSecond, burst ?? m) : null;
        Hour = perHour is { } h ? new Gcra(h, 3600 * TicksPerSecond, h) : null;
        Day = perDay is { } d ? new Gcra(d, 86_400 * TicksPerSecond, d) : null;
        PerMinute = perMinute;
        PerHour = perHour;
        PerDay = perDay;
        Burst = burst;
    }

    public Gcra? Minute { get; }

    public Gcra? Hour { get; }

    public Gcra? Day { get; }

    public int? PerMinute { get; }

    public int? PerHour { get; }

    public int? PerDay { get; }

    public int? Burst { get; }

    /// <summary>Takes one token from each bucket of <paramref name="state"/>, all or none.</summary>
    /// <returns>True when allowed; otherwise the wait in whole seconds (at least 1) until a retry can pass.</returns>
    public bool TryTake(BucketState state, long now, out long retryAfterSeconds) =>
        TryTake(ref state.MinuteTat, ref state.HourTat, ref state.DayTat, now, out retryAfterSeconds);

    /// <summary>The same over three TATs held elsewhere (a slot of <see cref="DomainBuckets"/>).</summary>
    public bool TryTake(ref long minuteTat, ref long hourTat, ref long dayTat, long now, out long retryAfterSeconds)
    {
        retryAfterSeconds = 0;
        long wait;
        if (Day is { } day && !day.TryTake(ref dayTat, now, out wait))
        {
            retryAfterSeconds = Seconds(wait);
            return false;
        }

        if (Hour is { } hour && !hour.TryTake(ref hourTat, now, out wait))
        {
            Day?.Refund(ref dayTat);
            retryAfterSeconds = Seconds(wait);
            return false;
        }

        if (Minute is { } minute && !minute.TryTake(ref minuteTat, now, out wait))
        {
            Day?.Refund(ref dayTat);
            Hour?.Refund(ref hourTat);
            retryAfterSeconds = Seconds(wait);
            return false;
        }

        return true;
    }

    private static long Seconds(long ticks) => Math.Max(1, (ticks + TicksPerSecond - 1) / TicksPerSecond);
}
