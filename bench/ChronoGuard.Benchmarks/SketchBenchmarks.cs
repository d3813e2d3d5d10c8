using System.Text;
using BenchmarkDotNet.Attributes;
using ChronoGuard.Analytics;

namespace ChronoGuard.Benchmarks;

/// <summary>
/// The analytics sketches' update paths, one thread and two threads on the same sketch at once. Keys
/// are a precomputed Zipf (s = 1.1) draw over 100,000 domains, so the heavy domains' counters are
/// shared and contended the way real traffic would share them; the second thread starts half way
/// through the array so the two are not in lockstep on the same key.
/// </summary>
[MemoryDiagnoser]
public class SketchBenchmarks
{
    private const int PerThread = 65_536;
    private const int Agents = 8;

    private ulong[] _hashes = [];
    private byte[][] _domains = [];
    private CountMinSketch _sketch = null!;
    private DomainStats _stats = null!;
    private HyperLogLog _hll = null!;
    private NewDomainWindow _window = null!;

    [GlobalSetup]
    public void Setup()
    {
        const int distinct = 100_000;
        var cdf = new double[distinct];
        var sum = 0.0;
        for (var r = 0; r < distinct; r++)
        {
            sum += 1.0 / Math.Pow(r + 1, 1.1);
            cdf[r] = sum;
        }

        var random = new Random(42);
        _hashes = new ulong[PerThread];
        _domains = new byte[PerThread][];
        for (var i = 0; i < PerThread; i++)
        {
            var index = Array.BinarySearch(cdf, random.NextDouble() * sum);
            var rank = index >= 0 ? index : Math.Min(~index, distinct - 1);
            _domains[i] = Encoding.ASCII.GetBytes($"d{rank}.example.com");
            _hashes[i] = CountMinSketch.Hash(_domains[i]);
        }

        _sketch = new CountMinSketch();
        _stats = new DomainStats();
        _hll = new HyperLogLog();
        _window = new NewDomainWindow(Agents);

        // Warm every structure so the measured steady state is the one a running proxy is in.
        CmsAdd(0);
        StatsRecord(0);
        HllAdd(0);
        WindowRecord(0);
    }

    [Benchmark(OperationsPerInvoke = PerThread)]
    public long CmsAdd_OneThread() => CmsAdd(0);

    [Benchmark(OperationsPerInvoke = PerThread * 2)]
    public void CmsAdd_TwoThreads() => TwoThreads(CmsAdd);

    [Benchmark(OperationsPerInvoke = PerThread)]
    public long DomainStatsRecord_OneThread() => StatsRecord(0);

    [Benchmark(OperationsPerInvoke = PerThread * 2)]
    public void DomainStatsRecord_TwoThreads() => TwoThreads(StatsRecord);

    /// <summary>The same with the hash computed by the caller: the sketch work alone.</summary>
    [Benchmark(OperationsPerInvoke = PerThread)]
    public long DomainStatsRecordPrehashed_OneThread() => StatsRecordPrehashed(0);

    [Benchmark(OperationsPerInvoke = PerThread * 2)]
    public void DomainStatsRecordPrehashed_TwoThreads() => TwoThreads(StatsRecordPrehashed);

    /// <summary>FNV-1a + fmix64 of the domain alone (the names here are 14 to 19 bytes).</summary>
    [Benchmark(OperationsPerInvoke = PerThread)]
    public long Hash_OneThread()
    {
        var domains = _domains;
        ulong last = 0;
        for (var i = 0; i < domains.Length; i++)
        {
            last ^= CountMinSketch.Hash(domains[i]);
        }

        return (long)last;
    }

    [Benchmark(OperationsPerInvoke = PerThread)]
    public long HllAdd_OneThread() => HllAdd(0);

    [Benchmark(OperationsPerInvoke = PerThread * 2)]
    public void HllAdd_TwoThreads() => TwoThreads(HllAdd);

    [Benchmark(OperationsPerInvoke = PerThread)]
    public long NewDomainWindowRecord_OneThread() => WindowRecord(0);

    [Benchmark(OperationsPerInvoke = PerThread * 2)]
    public void NewDomainWindowRecord_TwoThreads() => TwoThreads(WindowRecord);

    private static void TwoThreads(Func<int, long> body)
    {
        var other = new Thread(() => body(PerThread / 2));
        other.Start();
        body(0);
        other.Join();
    }

    private long CmsAdd(int offset)
    {
        var hashes = _hashes;
        long last = 0;
        for (var i = 0; i < hashes.Length; i++)
        {
            last += _sketch.Add(hashes[(i + offset) & (PerThread - 1)]);
        }

        return last;
    }

    private long StatsRecord(int offset)
    {
        var domains = _domains;
        ulong last = 0;
        for (var i = 0; i < domains.Length; i++)
        {
            last ^= _stats.Record(domains[(i + offset) & (PerThread - 1)]);
        }

        return (long)last;
    }

    private long StatsRecordPrehashed(int offset)
    {
        var domains = _domains;
        var hashes = _hashes;
        for (var i = 0; i < domains.Length; i++)
        {
            var j = (i + offset) & (PerThread - 1);
            _stats.Record(domains[j], hashes[j]);
        }

        return 0;
    }

    private long HllAdd(int offset)
    {
        var hashes = _hashes;
        for (var i = 0; i < hashes.Length; i++)
        {
            _hll.Add(hashes[(i + offset) & (PerThread - 1)]);
        }

        return 0;
    }

    private long WindowRecord(int offset)
    {
        var hashes = _hashes;
        long fresh = 0;
        for (var i = 0; i < hashes.Length; i++)
        {
            var j = (i + offset) & (PerThread - 1);
            fresh += _window.Record(j & (Agents - 1), hashes[j], 0) ? 1 : 0;
        }

        return fresh;
    }
}
