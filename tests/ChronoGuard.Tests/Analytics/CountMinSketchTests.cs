using ChronoGuard.Analytics;
using Xunit.Abstractions;

namespace ChronoGuard.Tests.Analytics;

public sealed class CountMinSketchTests(ITestOutputHelper output)
{
    [Fact]
    public void Estimates_never_fall_below_the_true_count_and_stay_within_epsilon_N_for_at_least_one_minus_delta_of_keys()
    {
        var data = ZipfEvents.Shared;
        var sketch = new CountMinSketch();
        foreach (var d in data.Sequence)
        {
            sketch.Add(data.Hashes[d]);
        }

        Assert.Equal(ZipfEvents.Events, sketch.Total);
        Assert.Equal(Math.E / 2048, sketch.Epsilon, 12);
        Assert.Equal(Math.Exp(-4), sketch.Delta, 12);
        var bound = sketch.ErrorBound;
        Assert.Equal((long)Math.Ceiling(Math.E / 2048 * ZipfEvents.Events), bound);

        var random = new Random(7);
        var sample = Enumerable.Range(0, 1000).Select(_ => random.Next(ZipfEvents.Distinct)).ToArray();
        var within = 0;
        long worst = 0;
        foreach (var d in sample)
        {
            var estimate = sketch.Estimate(data.Hashes[d]);
            Assert.True(estimate >= data.Counts[d], $"{data.Names[d]}: estimate {estimate} below the true count {data.Counts[d]}");
            worst = Math.Max(worst, estimate - data.Counts[d]);
            within += estimate <= data.Counts[d] + bound ? 1 : 0;
        }

        Assert.True(within >= (1 - sketch.Delta) * sample.Length, $"{within} of {sample.Length} within ε·N = {bound}");

        foreach (var d in data.ByCount[..100])
        {
            var estimate = sketch.Estimate(data.Hashes[d]);
            Assert.InRange(estimate, data.Counts[d], data.Counts[d] + bound);
        }

        output.WriteLine($"ε·N = {bound}; sample within bound {within}/1000; largest overestimate in the sample {worst}");
    }

    [Fact]
    public void Two_threads_give_the_same_total_and_keep_every_estimate_within_its_bound()
    {
        var data = ZipfEvents.Shared;
        var single = new DomainStats();
        foreach (var d in data.Sequence)
        {
            single.Record(data.Domains[d], data.Hashes[d]);
        }

        var shared = new DomainStats();
        using var start = new Barrier(2);
        void Half(int parity)
        {
            start.SignalAndWait();
            for (var i = parity; i < data.Sequence.Length; i += 2)
            {
                var d = data.Sequence[i];
                shared.Record(data.Domains[d], data.Hashes[d]);
            }
        }

        var other = new Thread(() => Half(1));
        other.Start();
        Half(0);
        other.Join();

        Assert.Equal(single.Sketch.Total, shared.Sketch.Total);
        Assert.Equal(ZipfEvents.Events, shared.Sketch.Total);

        // Conservative update depends on arrival order, so the two sketches need not agree counter for
        // counter; both must keep the guarantee.
        var bound = shared.Sketch.ErrorBound;
        var random = new Random(11);
        foreach (var d in Enumerable.Range(0, 1000).Select(_ => random.Next(ZipfEvents.Distinct)).Concat(data.ByCount[..100]))
        {
            Assert.InRange(shared.Sketch.Estimate(data.Hashes[d]), data.Counts[d], data.Counts[d] + bound);
        }

        Assert.Equal(
            data.ByCount[..10].Select(d => data.Names[d]).Order(StringComparer.Ordinal),
            shared.Snapshot()[..10].Select(h => h.Domain).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Two_threads_hammering_one_key_never_lose_an_increment()
    {
        const int PerThread = 500_000;
        var sketch = new CountMinSketch();
        var key = CountMinSketch.Hash("hot.example.com"u8);
        using var start = new Barrier(2);
        void Hammer()
        {
            start.SignalAndWait();
            for (var i = 0; i < PerThread; i++)
            {
                sketch.Add(key);
            }
        }

        var other = new Thread(Hammer);
        other.Start();
        Hammer();
        other.Join();

        Assert.Equal(2 * PerThread, sketch.Total);
        var estimate = sketch.Estimate(key);
        Assert.True(estimate >= 2 * PerThread, $"estimate {estimate} lost increments");
        output.WriteLine($"one key, 2 × {PerThread} adds: estimate {estimate}");
    }

    [Fact]
    public void Adds_with_counts_return_the_new_estimate()
    {
        var sketch = new CountMinSketch(depth: 3, width: 64);
        Assert.Equal(5, sketch.Add(42, 5));
        Assert.Equal(7, sketch.Add(42, 2));
        Assert.Equal(7, sketch.Estimate(42));
        Assert.Equal(7, sketch.Total);
        Assert.Throws<ArgumentException>(() => new CountMinSketch(width: 1000));
    }
}
