using System.Diagnostics;

namespace ChronoGuard.Metrics;

/// <summary>
/// A Prometheus histogram over Stopwatch ticks: fixed upper bounds in seconds, one Interlocked
/// increment and one Interlocked add per observation, no allocation. Buckets are stored
/// non-cumulative and summed when rendered, so an observation touches one bucket counter only.
/// </summary>
internal sealed class LatencyHistogram
{
    private readonly long[] _boundTicks;
    private readonly long[] _counts;
    private long _sumTicks;

    public LatencyHistogram(string name, string help, double[] boundsSeconds)
    {
        Name = name;
        Help = help;
        Bounds = boundsSeconds;
        _boundTicks = new long[boundsSeconds.Length];
        for (var i = 0; i < boundsSeconds.Length; i++)
        {
            _boundTicks[i] = (long)Math.Ceiling(boundsSeconds[i] * Stopwatch.Frequency);
        }

        _counts = new long[boundsSeconds.Length + 1];
    }

    public string Name { get; }

    public string Help { get; }

    public double[] Bounds { get; }

    /// <summary>1 µs to 10 ms: the decision path.</summary>
    public static double[] Micro => [0.000_001, 0.000_002_5, 0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.01];

    /// <summary>50 µs to 10 s: DNS, TCP connect, device commits.</summary>
    public static double[] Milli => [0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

    public void Observe(long ticks)
    {
        var i = 0;
        var bounds = _boundTicks;
        while (i < bounds.Length && ticks > bounds[i])
        {
            i++;
        }

        Interlocked.Increment(ref _counts[i]);
        Interlocked.Add(ref _sumTicks, ticks);
    }

    /// <summary>Cumulative counts per bound (the last is +Inf), the sum in seconds and the count.</summary>
    public (long[] Cumulative, double SumSeconds, long Count) Read()
    {
        var cumulative = new long[_counts.Length];
        var running = 0L;
        for (var i = 0; i < _counts.Length; i++)
        {
            running += Volatile.Read(ref _counts[i]);
            cumulative[i] = running;
        }

        return (cumulative, (double)Volatile.Read(ref _sumTicks) / Stopwatch.Frequency, running);
    }
}
