using System.Diagnostics;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace ChronoGuard.Analytics;

/// <summary>
/// A Count-Min sketch (Cormode and Muthukrishnan 2005) of per-domain request counts, updated by every
/// request thread at once with compare-and-swap only, using conservative update (Estan and Varghese 2002).
/// </summary>
/// <remarks>
/// <para>Guarantee, with ε = e/w and δ = e^-d and N = <see cref="Total"/>: for any key,
/// <c>true ≤ Estimate(key)</c> always, and <c>Estimate(key) ≤ true + ε·N</c> with probability at least
/// 1 − δ. The defaults w = 2048, d = 4 give ε ≈ 0.00133 and δ ≈ 0.0183. Conservative update keeps the
/// same guarantee and in practice lands much closer to the true count than the bound.</para>
/// <para>Row indexes come from double hashing (h1 + i·h2, Kirsch and Mitzenmacher 2006) on the two
/// 32-bit halves of the key, taking the top bits of the 32-bit sum: with the low bits (mod w) two keys
/// that collide in two rows would collide in all of them, with the top bits the carries keep rows apart.</para>
/// </remarks>
internal sealed class CountMinSketch
{
    /// <summary>Bounds the stack buffer of observed counters; δ = e^-16 is far past any use.</summary>
    public const int MaxDepth = 16;

    // Stripes of the total, one cache line apart: a single shared total would be written by every
    // request on every core, and that line bouncing would cost more than the whole sketch update.
    private const int TotalStripes = 16;
    private const int StripeStride = 8;

    private readonly long[] _counters;
    private readonly long[] _totals = new long[TotalStripes * StripeStride];
    private readonly int _depth;
    private readonly int _width;
    private readonly int _shift;

    public CountMinSketch(int depth = 4, int width = 2048)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(depth, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(depth, MaxDepth);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 2);
        if (!BitOperations.IsPow2(width))
        {
            throw new ArgumentException("The width must be a power of two.", nameof(width));
        }

        _depth = depth;
        _width = width;
        _shift = 32 - BitOperations.Log2((uint)width);
        _counters = new long[depth * width];
        Epsilon = Math.E / width;
        Delta = Math.Exp(-depth);
    }

    public int Depth => _depth;

    public int Width => _width;

    /// <summary>ε = e/w: the overestimate is at most ε·N with probability 1 − δ.</summary>
    public double Epsilon { get; }

    /// <summary>δ = e^-d: the probability that one estimate exceeds the ε·N bound.</summary>
    public double Delta { get; }

    /// <summary>N, the sum of every count added.</summary>
    public long Total
    {
        get
        {
            long total = 0;
            for (var i = 0; i < TotalStripes; i++)
            {
                total += Volatile.Read(ref _totals[i * StripeStride]);
            }

            return total;
        }
    }

    /// <summary>ε·N for the current N, rounded up: no estimate exceeds the true count by more, with probability 1 − δ.</summary>
    public long ErrorBound => (long)Math.Ceiling(Epsilon * Total);

    /// <summary>
    /// A 64-bit hash of a domain already in lowercase ASCII without a trailing dot: FNV-1a, then
    /// murmur3's fmix64 so that every output bit depends on every input bit (FNV-1a alone leaves the low
    /// bits weak, and the sketches take indexes from both ends of the hash). System.IO.Hashing is not a
    /// dependency of this assembly, hence no XxHash64.
    /// </summary>
    public static ulong Hash(ReadOnlySpan<byte> asciiLowerDomain)
    {
        var h = 14695981039346656037UL;
        foreach (var b in asciiLowerDomain)
        {
            h = (h ^ b) * 1099511628211UL;
        }

        return Mix(h);
    }

    /// <summary>murmur3 fmix64.</summary>
    public static ulong Mix(ulong h)
    {
        h ^= h >> 33;
        h *= 0xff51afd7ed558ccdUL;
        h ^= h >> 33;
        h *= 0xc4ceb9fe1a85ec53UL;
        h ^= h >> 33;
        return h;
    }

    /// <summary>
    /// Adds <paramref name="count"/> (positive) to the key and returns its estimate right after this
    /// update. Lock-free: reads the d counters, then raises each one below min + count to exactly that
    /// with a CAS expecting the value it read; any CAS failure restarts from the reads.
    /// </summary>
    /// <remarks>
    /// Why restart instead of re-checking only the failed counter: two threads adding the same key both
    /// read m and aim for m + 1; if the loser merely saw "already ≥ m + 1" and moved on, the two updates
    /// would leave m + 1 for a true count of m + 2, an underestimate that the sketch promises never to make.
    /// Expecting the first-read value makes every counter write ordered after the reads it was planned
    /// from. A restart can leave counters raised by the abandoned attempt: that only overestimates.
    /// </remarks>
    public long Add(ulong hash, long count = 1)
    {
        Debug.Assert(count > 0, "counts are positive");
        var counters = _counters;
        var depth = _depth;
        var h1 = (uint)hash;

        // Never 0, which would put the key in the same column of every row.
        var h2 = (uint)(hash >> 32) | 1u;
        Span<long> seen = stackalloc long[MaxDepth];
        while (true)
        {
            var min = long.MaxValue;
            for (var i = 0; i < depth; i++)
            {
                var value = Volatile.Read(ref counters[Slot(i, h1, h2)]);
                seen[i] = value;
                min = Math.Min(min, value);
            }

            var target = min + count;
            var i2 = 0;
            for (; i2 < depth; i2++)
            {
                var expected = seen[i2];
                if (expected < target
                    && Interlocked.CompareExchange(ref counters[Slot(i2, h1, h2)], target, expected) != expected)
                {
                    break;
                }
            }

            if (i2 == depth)
            {
                Interlocked.Add(ref _totals[(Thread.GetCurrentProcessorId() & (TotalStripes - 1)) * StripeStride], count);
                return target;
            }
        }
    }

    /// <summary>The minimum of the key's d counters: never below its true count.</summary>
    public long Estimate(ulong hash)
    {
        var h1 = (uint)hash;
        var h2 = (uint)(hash >> 32) | 1u;
        var min = long.MaxValue;
        for (var i = 0; i < _depth; i++)
        {
            min = Math.Min(min, Volatile.Read(ref _counters[Slot(i, h1, h2)]));
        }

        return min;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Slot(int row, uint h1, uint h2) => (row * _width) + (int)((h1 + ((uint)row * h2)) >> _shift);
}
