namespace ChronoGuard.Policy;

/// <summary>
/// One rate limit as a token bucket in its GCRA form: the bucket's whole state is one long, the
/// theoretical arrival time (TAT) of the next conforming request, updated with a CAS. A request at
/// time t conforms when TAT - tolerance &lt;= t; it then moves TAT to max(TAT, t) + interval. This is a
/// token bucket of capacity <c>burst</c> refilled at <c>limit/period</c>, exactly, with no separate
/// token count to keep consistent with a timestamp, and the wait until the next token is TAT - tolerance - t.
/// </summary>
internal readonly struct Gcra
{
    public Gcra(long limit, long periodTicks, long burst)
    {
        IntervalTicks = Math.Max(1, periodTicks / Math.Max(1, limit));
        ToleranceTicks = IntervalTicks * (Math.Max(1, burst) - 1);
    }

    public long IntervalTicks { get; }

    public long ToleranceTicks { get; }

    /// <summary>Takes one token; false with the wait (ticks) until one is available.</summary>
    public bool TryTake(ref long tat, long now, out long waitTicks)
    {
        while (true)
        {
            var current = Volatile.Read(ref tat);
            var allowAt = current - ToleranceTicks;
            if (allowAt > now)
            {
                waitTicks = allowAt - now;
                return false;
            }

            var next = Math.Max(current, now) + IntervalTicks;
            if (Interlocked.CompareExchange(ref tat, next, current) == current)
            {
                waitTicks = 0;
                return true;
            }
        }
    }

    /// <summary>Gives back a token taken by <see cref="TryTake"/> when a later limit refused the request.</summary>
    public void Refund(ref long tat) => Interlocked.Add(ref tat, -IntervalTicks);

    /// <summary>Tokens available now (for explain and tests).</summary>
    public long Available(long tat, long now)
    {
        var backlog = Math.Max(0, tat - now);
        return Math.Max(0, (ToleranceTicks + IntervalTicks - backlog) / IntervalTicks);
    }
}
