using System.Numerics;

namespace ChronoGuard.LoadGen;

/// <summary>
/// Log-linear latency histogram in microseconds: 1 µs buckets below 1,024 µs, then 128 sub-buckets
/// per power of two (worst-case relative error 1/128 ≈ 0.8 %) up to 2^26 µs (~67 s).
/// </summary>
/// <remarks>
/// One instance has exactly one writer (its worker), so <see cref="Record"/> is plain increments:
/// no interlocked traffic on the hot path. Readers (the progress line, the final merge) tolerate
/// torn snapshots because every counter only grows and 64-bit aligned loads are atomic.
/// </remarks>
internal sealed class Histogram
{
    private const int LinearBuckets = 1024;          // 2^LinearBits
    private const int LinearBits = 10;
    private const int SubBucketBits = 7;
    private const int SubBuckets = 1 << SubBucketBits;
    private const int MaxExponent = 25;              // highest octave starts at 2^25 µs ≈ 33.5 s
    public const int BucketCount = LinearBuckets + ((MaxExponent - LinearBits + 1) * SubBuckets);
    public const long HighestTrackable = (1L << (MaxExponent + 1)) - 1;

    private readonly long[] _counts = new long[BucketCount];
    private long _total;
    private long _sum;
    private long _max;
    private long _min = long.MaxValue;

    public long TotalCount => Volatile.Read(ref _total);
    public long Max => Volatile.Read(ref _max);
    public long Min => _total == 0 ? 0 : _min;
    public double Mean => _total == 0 ? 0 : (double)_sum / _total;

    public void Record(long micros)
    {
        if (micros < 0)
        {
            micros = 0;
        }
        _counts[IndexOf(micros)]++;
        _sum += micros;
        if (micros > _max)
        {
            _max = micros;
        }
        if (micros < _min)
        {
            _min = micros;
        }
        // Published last so a reader that sees the count also sees the bucket it belongs to.
        Volatile.Write(ref _total, _total + 1);
    }

    /// <summary>Adds another histogram's counts (used for the end-of-run merge and progress snapshots).</summary>
    public void Add(Histogram other)
    {
        var src = other._counts;
        for (var i = 0; i < src.Length; i++)
        {
            _counts[i] += Volatile.Read(ref src[i]);
        }
        var otherTotal = other.TotalCount;
        if (otherTotal == 0)
        {
            return;
        }
        _total += otherTotal;
        _sum += other._sum;
        _max = Math.Max(_max, other.Max);
        _min = Math.Min(_min, other._min);
    }

    /// <summary>Copies the raw bucket counts, for interval (per-second) percentiles by difference.</summary>
    public void CopyCountsTo(long[] destination)
    {
        var src = _counts;
        for (var i = 0; i < src.Length; i++)
        {
            destination[i] += Volatile.Read(ref src[i]);
        }
    }

    public long ValueAtPercentile(double percentile) => ValueAtPercentile(_counts, _total, percentile, Min, _max);

    /// <summary>
    /// The highest value equivalent to the bucket holding the requested rank (as HdrHistogram reports
    /// it), so a percentile is never understated; clamped to the recorded extremes when they are known.
    /// </summary>
    public static long ValueAtPercentile(long[] counts, long total, double percentile, long min = 0, long max = long.MaxValue)
    {
        if (total <= 0)
        {
            return 0;
        }
        if (percentile <= 0)
        {
            for (var i = 0; i < counts.Length; i++)
            {
                if (counts[i] > 0)
                {
                    return Math.Max(LowestEquivalent(i), min);
                }
            }
            return min;
        }
        var rank = (long)Math.Ceiling(Math.Min(percentile, 100.0) / 100.0 * total);
        rank = Math.Clamp(rank, 1, total);
        long seen = 0;
        for (var i = 0; i < counts.Length; i++)
        {
            seen += counts[i];
            if (seen >= rank)
            {
                return Math.Clamp(HighestEquivalent(i), min, max);
            }
        }
        return max == long.MaxValue ? HighestEquivalent(counts.Length - 1) : max;
    }

    internal static int IndexOf(long micros)
    {
        if (micros < LinearBuckets)
        {
            return (int)micros;
        }
        if (micros > HighestTrackable)
        {
            return BucketCount - 1;
        }
        var exponent = 63 - BitOperations.LeadingZeroCount((ulong)micros);
        var sub = (int)(micros >> (exponent - SubBucketBits)) & (SubBuckets - 1);
        return LinearBuckets + ((exponent - LinearBits) * SubBuckets) + sub;
    }

    internal static long LowestEquivalent(int index)
    {
        if (index < LinearBuckets)
        {
            return index;
        }
        var octave = (index - LinearBuckets) >> SubBucketBits;
        var sub = (index - LinearBuckets) & (SubBuckets - 1);
        return (long)(SubBuckets + sub) << (octave + LinearBits - SubBucketBits);
    }

    internal static long HighestEquivalent(int index)
    {
        if (index < LinearBuckets)
        {
            return index;
        }
        var octave = (index - LinearBuckets) >> SubBucketBits;
        return LowestEquivalent(index) + (1L << (octave + LinearBits - SubBucketBits)) - 1;
    }
}
