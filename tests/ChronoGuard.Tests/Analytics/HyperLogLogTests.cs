using System.Text;
using ChronoGuard.Analytics;
using Xunit.Abstractions;

namespace ChronoGuard.Tests.Analytics;

public sealed class HyperLogLogTests(ITestOutputHelper output)
{
    // 41,000 sits just past the raw estimate's classic switch from linear counting (2.5·m), where that
    // estimator is biased by about 2%.
    [Theory]
    [InlineData(1_000)]
    [InlineData(41_000)]
    [InlineData(100_000)]
    [InlineData(1_000_000)]
    public void Estimates_fall_within_three_standard_errors(int cardinality)
    {
        var hll = new HyperLogLog();
        foreach (var hash in DistinctHashes(cardinality, $"c{cardinality}"))
        {
            hll.Add(hash);
        }

        var estimate = hll.Estimate();
        var error = Math.Abs(estimate - cardinality) / (double)cardinality;
        output.WriteLine($"n = {cardinality}: estimate {estimate}, relative error {error:P3} (σ = {HyperLogLog.RelativeStandardError:P3})");
        Assert.True(error <= 3 * HyperLogLog.RelativeStandardError, $"n = {cardinality}: estimate {estimate}");
    }

    [Fact]
    public void Small_cardinalities_are_near_exact_and_duplicates_do_not_count()
    {
        Assert.Equal(0.0081, HyperLogLog.RelativeStandardError, 4);
        var hll = new HyperLogLog();
        Assert.Equal(0, hll.Estimate());
        var hashes = DistinctHashes(100, "small").ToArray();
        for (var round = 0; round < 3; round++)
        {
            foreach (var hash in hashes)
            {
                hll.Add(hash);
            }
        }

        Assert.InRange(hll.Estimate(), 99, 101);
    }

    [Fact]
    public void Two_threads_leave_exactly_the_registers_one_thread_does()
    {
        var hashes = DistinctHashes(1_000_000, "race").ToArray();
        var single = new HyperLogLog();
        foreach (var hash in hashes)
        {
            single.Add(hash);
        }

        // Each register is a maximum, which does not depend on order: any lost CAS would show as a difference.
        var shared = new HyperLogLog();
        using var start = new Barrier(2);
        void Half(int parity)
        {
            start.SignalAndWait();
            for (var i = parity; i < hashes.Length; i += 2)
            {
                shared.Add(hashes[i]);
            }
        }

        var other = new Thread(() => Half(1));
        other.Start();
        Half(0);
        other.Join();
        Assert.Equal(single.Estimate(), shared.Estimate());
    }

    [Fact]
    public void Distinct_domains_count_globally_and_per_agent_and_grow_for_new_agents()
    {
        var distinct = new DistinctDomains(agentCapacity: 2);
        var hashes = DistinctHashes(3_000, "agents").ToArray();
        for (var i = 0; i < hashes.Length; i++)
        {
            distinct.Record(i % 3 == 0 ? 0 : i % 3 == 1 ? 1 : 5, hashes[i]);
        }

        Assert.InRange(distinct.Global.Estimate(), 2_970, 3_030);
        Assert.InRange(distinct.EstimateForAgent(0), 990, 1_010);
        Assert.InRange(distinct.ForAgent(5).Estimate(), 990, 1_010);
        Assert.Equal(0, distinct.EstimateForAgent(3));
        Assert.Equal(0, distinct.EstimateForAgent(99));
    }

    private static IEnumerable<ulong> DistinctHashes(int count, string prefix)
    {
        for (var i = 0; i < count; i++)
        {
            yield return CountMinSketch.Hash(Encoding.ASCII.GetBytes($"{prefix}-{i}.example.com"));
        }
    }
}
