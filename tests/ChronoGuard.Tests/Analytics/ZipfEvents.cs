using System.Text;
using ChronoGuard.Analytics;

namespace ChronoGuard.Tests.Analytics;

/// <summary>
/// 10^6 requests over 100,000 domains, Zipf-distributed with s = 1.1 (seeded), with the exact count of
/// every domain as the reference. Built once and shared: the sketches under test only read it.
/// </summary>
internal sealed class ZipfEvents
{
    public const int Distinct = 100_000;
    public const int Events = 1_000_000;
    public const double Exponent = 1.1;

    private static readonly Lazy<ZipfEvents> Instance = new(() => new ZipfEvents(seed: 20240611));

    private ZipfEvents(int seed)
    {
        Names = new string[Distinct];
        Domains = new byte[Distinct][];
        Hashes = new ulong[Distinct];
        for (var i = 0; i < Distinct; i++)
        {
            Names[i] = $"d{i}.example.com";
            Domains[i] = Encoding.ASCII.GetBytes(Names[i]);
            Hashes[i] = CountMinSketch.Hash(Domains[i]);
        }

        var cdf = new double[Distinct];
        var sum = 0.0;
        for (var r = 0; r < Distinct; r++)
        {
            sum += 1.0 / Math.Pow(r + 1, Exponent);
            cdf[r] = sum;
        }

        var random = new Random(seed);
        Sequence = new int[Events];
        Counts = new long[Distinct];
        for (var i = 0; i < Events; i++)
        {
            var index = Array.BinarySearch(cdf, random.NextDouble() * sum);
            var domain = index >= 0 ? index : Math.Min(~index, Distinct - 1);
            Sequence[i] = domain;
            Counts[domain]++;
        }

        ByCount = Enumerable.Range(0, Distinct).OrderByDescending(d => Counts[d]).ThenBy(d => d).ToArray();
    }

    public static ZipfEvents Shared => Instance.Value;

    public string[] Names { get; }

    public byte[][] Domains { get; }

    public ulong[] Hashes { get; }

    /// <summary>The domain index of each request, in arrival order.</summary>
    public int[] Sequence { get; }

    /// <summary>The exact number of requests per domain index.</summary>
    public long[] Counts { get; }

    /// <summary>Domain indexes by exact count, largest first.</summary>
    public int[] ByCount { get; }
}
