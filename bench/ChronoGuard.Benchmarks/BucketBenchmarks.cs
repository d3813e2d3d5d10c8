using System.Diagnostics;
using BenchmarkDotNet.Attributes;
using ChronoGuard.Policy;

namespace ChronoGuard.Benchmarks;

/// <summary>One bucket set taken from by one thread, and by two threads at once (CAS contention).</summary>
[MemoryDiagnoser]
public class BucketBenchmarks
{
    private const int PerThread = 100_000;
    private readonly RateLimits _limits = new(int.MaxValue / 2, null, null, int.MaxValue / 2);
    private readonly BucketState _state = new();

    [Benchmark(OperationsPerInvoke = PerThread)]
    public bool OneThread()
    {
        var ok = true;
        for (var i = 0; i < PerThread; i++)
        {
            ok &= _limits.TryTake(_state, Stopwatch.GetTimestamp(), out _);
        }

        return ok;
    }

    [Benchmark(OperationsPerInvoke = PerThread * 2)]
    public void TwoThreadsContending()
    {
        var other = new Thread(() => OneThread());
        other.Start();
        OneThread();
        other.Join();
    }
}
