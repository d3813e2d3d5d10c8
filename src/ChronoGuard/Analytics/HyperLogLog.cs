using System.Numerics;
using System.Runtime.CompilerServices;

namespace ChronoGuard.Analytics;

/// <summary>
/// A HyperLogLog distinct counter (Flajolet, Fusy, Gandouet and Meunier 2007) with p = 14: 16,384
/// one-byte registers (16 KB), fed 64-bit hashes, updated lock-free by any number of threads.
/// </summary>
/// <remarks>
/// <para>Standard error 1.04/√m ≈ 0.81% (<see cref="RelativeStandardError"/>): about 68% of estimates
/// fall within one standard error of the true count and 99.7% within three.</para>
/// <para>With 64-bit hashes a register's rank can reach 51 and no large-range correction is needed:
/// the 32-bit hash collisions that correction repairs do not happen below billions of distinct keys.</para>
/// </remarks>
internal sealed class HyperLogLog
{
    public const int Precision = 14;
    public const int RegisterCount = 1 << Precision;
    private const int IndexShift = 64 - Precision;
    private const int MaxRank = 64 - Precision + 1;
    private const double M = RegisterCount;

    private static readonly double AlphaInfinity = 1 / (2 * Math.Log(2));

    private readonly byte[] _registers = new byte[RegisterCount];

    /// <summary>1.04/√m ≈ 0.0081 for m = 2^14.</summary>
    public static double RelativeStandardError { get; } = 1.04 / Math.Sqrt(M);

    /// <summary>
    /// Adds a key by its 64-bit hash. Once the registers have warmed up almost every add is one read and
    /// a compare; the CAS loop runs only when the rank beats the register, and ends as soon as the
    /// register holds at least that rank, whoever wrote it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Add(ulong hash)
    {
        // The top p bits pick the register; the sentinel bit stops the count of leading zeros of the
        // remaining 50 bits at 50, so a rank is 1..51.
        var rank = (byte)(BitOperations.LeadingZeroCount((hash << Precision) | (1UL << (Precision - 1))) + 1);
        ref var register = ref _registers[(int)(hash >> IndexShift)];
        var current = Volatile.Read(ref register);
        while (rank > current)
        {
            var seen = Interlocked.CompareExchange(ref register, rank, current);
            if (seen == current)
            {
                // Rare once warm (a register rises at most 51 times): tells Estimate to recompute.
                Interlocked.Increment(ref _version);
                return;
            }

            current = seen;
        }
    }

    /// <summary>
    /// The estimated number of distinct keys added, by Ertl's improved raw estimator ("New cardinality
    /// estimation algorithms for HyperLogLog sketches", 2017, algorithm 6): α∞·m² / (m·σ(C₀/m) +
    /// Σₖ Cₖ·2^-k + m·τ(1 − C₅₁/m)·2^-50), with Cₖ the number of registers holding k.
    /// </summary>
    /// <remarks>
    /// <para>When no register is 0 or 51 this is the standard raw estimate α·m²/Σ2^-M[j] (α∞ = 1/(2 ln 2)
    /// is α_m to four digits). It replaces the usual switch to linear counting, m·ln(m/C₀), with the term
    /// σ that accounts for the zero registers continuously, so there is no switchover point.</para>
    /// <para>Why not the textbook switch: below 2.5·m the raw estimate is biased high (it never goes
    /// below α·m ≈ 11,800, even when empty), and just past the switch at raw = 2.5·m = 40,960 the raw
    /// estimate is still biased. Measured over 40 runs per point, linear counting below that switch has a
    /// bias of +1.5% to +2.3% and an RMSE of about 2.4% at 40,000 to 41,000 distinct keys, three times
    /// the promised error. HLL++'s switch at 11,500 for p = 14 fixes that only together with its empirical
    /// bias table, which this class does not carry. This estimator measured an RMSE of at most 0.85% and a
    /// bias within ±0.3% at every point from 1,000 to 10^6 distinct keys, including 40,000 to 41,000, and
    /// behaves like linear counting at small counts (100 keys: 0.5 low on average; 10 keys: exact).</para>
    /// </remarks>
    public long Estimate()
    {
        // A scrape reads one HLL per agent; scanning 16,384 registers each time is what costs, and most
        // agents' registers have not moved since the last scrape. A racing Add bumps the version after
        // its CAS, so a stale cache is refreshed on the next call.
        var version = Volatile.Read(ref _version);
        var cached = Volatile.Read(ref _cached);
        if (cached is not null && cached.Version == version)
        {
            return cached.Value;
        }

        var value = Compute();
        Volatile.Write(ref _cached, new CachedEstimate(version, value));
        return value;
    }

    private sealed record CachedEstimate(long Version, long Value);

    private long _version;
    private CachedEstimate? _cached;

    private long Compute()
    {
        Span<int> histogram = stackalloc int[MaxRank + 1];
        histogram.Clear();
        var registers = _registers;
        for (var i = 0; i < registers.Length; i++)
        {
            histogram[Volatile.Read(ref registers[i])]++;
        }

        // Horner's scheme over k = 50 … 1 computes Σₖ Cₖ·2^-k plus the τ term's 2^-50 in one pass.
        var z = M * Tau(1 - (histogram[MaxRank] / M));
        for (var k = MaxRank - 1; k >= 1; k--)
        {
            z = 0.5 * (z + histogram[k]);
        }

        z += M * Sigma(histogram[0] / M);
        return (long)Math.Round(AlphaInfinity * M * M / z);
    }

    /// <summary>σ(x) = x + Σ_{k≥1} x^(2^k)·2^(k−1), summed until it stops changing.</summary>
    private static double Sigma(double x)
    {
        if (x == 1)
        {
            return double.PositiveInfinity;
        }

        var y = 1.0;
        var z = x;
        double previous;
        do
        {
            x *= x;
            previous = z;
            z += x * y;
            y += y;
        }
        while (z != previous);
        return z;
    }

    /// <summary>τ(x) = (1 − x − Σ_{k≥1} (1 − x^(2^-k))²·2^-k) / 3, summed until it stops changing.</summary>
    private static double Tau(double x)
    {
        if (x == 0 || x == 1)
        {
            return 0;
        }

        var y = 1.0;
        var z = 1 - x;
        double previous;
        do
        {
            x = Math.Sqrt(x);
            previous = z;
            y *= 0.5;
            z -= (1 - x) * (1 - x) * y;
        }
        while (z != previous);
        return z / 3;
    }
}
