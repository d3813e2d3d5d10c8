using System.Text;
using ChronoGuard.Analytics;
using Xunit.Abstractions;

namespace ChronoGuard.Tests.Analytics;

public sealed class TopKTests(ITestOutputHelper output)
{
    [Fact]
    public void The_reported_top_ten_is_the_true_top_ten_and_the_top_twenty_are_within_their_bound()
    {
        var data = ZipfEvents.Shared;
        var stats = new DomainStats();
        foreach (var d in data.Sequence)
        {
            var hash = stats.Record(data.Domains[d]);
            Assert.Equal(data.Hashes[d], hash);
        }

        var top = stats.Snapshot();
        Assert.Equal(20, top.Length);
        Assert.Equal(data.ByCount[..10].Select(d => data.Names[d]), top[..10].Select(h => h.Domain));

        var index = data.Names.Select((name, i) => (name, i)).ToDictionary(p => p.name, p => p.i, StringComparer.Ordinal);
        var bound = stats.Sketch.ErrorBound;
        foreach (var hitter in top)
        {
            var truth = data.Counts[index[hitter.Domain]];
            Assert.Equal(bound, hitter.ErrorBound);
            Assert.InRange(truth, hitter.LowerBound, hitter.Estimate);
        }

        Assert.True(top.Zip(top.Skip(1)).All(p => p.First.Estimate >= p.Second.Estimate));
        var trueTop20 = data.ByCount[..20].Select(d => data.Names[d]).ToHashSet();
        output.WriteLine($"ε·N = {bound}; admissions {stats.Top.Admissions}; reported top 20 ∩ true top 20 = {top.Count(h => trueTop20.Contains(h.Domain))}");
        foreach (var hitter in top)
        {
            output.WriteLine($"{hitter.Domain,-20} estimate {hitter.Estimate,7} true {data.Counts[index[hitter.Domain]],7}");
        }
    }

    [Fact]
    public void A_newcomer_enters_only_by_beating_the_weakest_candidate_by_more_than_epsilon_N()
    {
        // A narrow sketch so that ε·N (ε = e/64) is large enough to see; three keys do not collide in it.
        var stats = new DomainStats(width: 64, k: 2, candidates: 2);
        var a = Encoding.ASCII.GetBytes("a.example");
        var b = Encoding.ASCII.GetBytes("b.example");
        var c = Encoding.ASCII.GetBytes("c.example");
        for (var i = 0; i < 100; i++)
        {
            stats.Record(a);
            stats.Record(b);
        }

        stats.Record(a);
        Assert.Equal(2, stats.Top.Admissions);

        // b has 100; after 110 requests c is past b but not by ε·N = ⌈e/64 · 311⌉ = 14.
        for (var i = 0; i < 110; i++)
        {
            stats.Record(c);
        }

        Assert.Equal(2, stats.Top.Admissions);
        Assert.Equal(["a.example", "b.example"], stats.Snapshot().Select(h => h.Domain));

        for (var i = 0; i < 10; i++)
        {
            stats.Record(c);
        }

        Assert.Equal(3, stats.Top.Admissions);
        Assert.Equal(["c.example", "a.example"], stats.Snapshot().Select(h => h.Domain));
    }
}
