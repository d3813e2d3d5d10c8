using System.Net;
using ChronoGuard.Proxy;

namespace ChronoGuard.Tests.Proxy;

/// <summary>The per-source limiter of unauthenticated refusals against a naive unbounded reference.</summary>
public sealed class UnauthenticatedLimiterTests
{
    private static readonly IPAddress[] Pool = [.. Enumerable.Range(0, 200).Select(i => i % 2 == 0
        ? new IPAddress([10, 0, (byte)(i / 256), (byte)i])
        : IPAddress.Parse($"2001:db8::{i:x}"))];

    /// <summary>
    /// Random refusals from a pool of 200 sources through a table of 8 entries: at most 4 sources per
    /// second (so the table always has room and the answer cannot depend on the hash), many seconds,
    /// so entries are reused with counts pending. Every answer equals the reference's, and every
    /// (source, second) count comes out exactly once with its first host, through rollovers, reuse,
    /// heartbeat drains and the final drain.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void Answers_and_counts_match_a_naive_per_source_per_second_reference(int seed)
    {
        var random = new Random(seed);
        var perSecond = random.Next(1, 6);
        var limiter = new UnauthenticatedLimiter(perSecond, sets: 2);
        var reference = new Dictionary<(IPAddress, long), (int Admitted, int Suppressed, string? FirstHost)>();
        var emitted = new List<SuppressedRefusals>();
        var second = 1_800_000_000L;
        IPAddress[] active = [];
        for (var round = 0; round < 400; round++)
        {
            // Some rounds go on in the same second with the same sources (a heartbeat drain between them).
            if (round == 0 || random.Next(3) != 0)
            {
                second += random.Next(1, 3);
                active = [.. Enumerable.Range(0, random.Next(1, 5)).Select(_ => Pool[random.Next(Pool.Length)]).Distinct()];
            }

            for (var n = random.Next(1, 40); n > 0; n--)
            {
                var source = active[random.Next(active.Length)];
                var host = $"h{random.Next(1000)}.example";
                var admitted = limiter.TryAdmit(source, second, host, out var flushed);
                if (flushed.Count > 0)
                {
                    emitted.Add(flushed);
                }

                var r = reference.GetValueOrDefault((source, second));
                var expected = r.Admitted < perSecond;
                reference[(source, second)] = expected ? (r.Admitted + 1, r.Suppressed, r.FirstHost) : (r.Admitted, r.Suppressed + 1, r.FirstHost ?? host);
                Assert.Equal(expected, admitted);
            }

            if (random.Next(4) == 0)
            {
                limiter.Drain(second, emitted);
            }
        }

        limiter.Drain(long.MaxValue, emitted);
        Assert.False(limiter.HasPending);
        Assert.DoesNotContain(emitted, e => e.Overflow);
        var expectedCounts = reference.Where(p => p.Value.Suppressed > 0)
            .Select(p => (p.Key.Item1.ToString(), p.Key.Item2, p.Value.Suppressed, p.Value.FirstHost)).OrderBy(x => x).ToList();
        var actual = emitted.Select(e => (e.Source!.ToString(), e.Second, e.Count, e.FirstHost)).OrderBy(x => x).ToList();
        Assert.Equal(expectedCounts, actual);
    }

    /// <summary>More sources in one second than the table holds: those without room share one budget; no refusal is lost from the counts.</summary>
    [Fact]
    public void Sources_beyond_the_table_share_one_overflow_budget_and_every_refusal_is_counted()
    {
        var limiter = new UnauthenticatedLimiter(3, sets: 1);
        var emitted = new List<SuppressedRefusals>();
        var admitted = 0;
        for (var i = 0; i < 50; i++)
        {
            for (var k = 0; k < 10; k++)
            {
                admitted += limiter.TryAdmit(Pool[i], 7, "x.example", out var flushed) ? 1 : 0;
                Assert.Equal(0, flushed.Count);
            }
        }

        limiter.Drain(long.MaxValue, emitted);
        // Four sources got their own entry (3 each recorded), the other 46 shared one budget of 3.
        Assert.Equal((4 * 3) + 3, admitted);
        Assert.Equal(500, admitted + emitted.Sum(e => e.Count));
        Assert.Single(emitted, e => e.Overflow);
    }

    /// <summary>Many threads refusing for one source in one second: exactly the budget is recorded, the rest counted.</summary>
    [Fact]
    public void Concurrent_refusals_from_one_source_admit_exactly_the_budget()
    {
        var limiter = new UnauthenticatedLimiter(20);
        var admitted = 0;
        Parallel.For(0, 8, worker =>
        {
            for (var i = 0; i < 5_000; i++)
            {
                if (limiter.TryAdmit(IPAddress.Loopback, 42, "a.example", out _))
                {
                    Interlocked.Increment(ref admitted);
                }
            }
        });

        var emitted = new List<SuppressedRefusals>();
        limiter.Drain(long.MaxValue, emitted);
        Assert.Equal(20, admitted);
        Assert.Equal(40_000 - 20, Assert.Single(emitted).Count);
    }

    [Fact]
    public void An_IPv4_source_and_its_mapped_IPv6_spelling_are_one_source()
    {
        var limiter = new UnauthenticatedLimiter(1);
        Assert.True(limiter.TryAdmit(IPAddress.Parse("192.0.2.1"), 1, null, out _));
        Assert.False(limiter.TryAdmit(IPAddress.Parse("::ffff:192.0.2.1"), 1, null, out _));
    }

    /// <summary>A refusal on the flood path, admitted or counted, allocates nothing (the second rolls over every 100 calls).</summary>
    [Fact]
    public void Admitting_and_counting_allocate_nothing()
    {
        var limiter = new UnauthenticatedLimiter(20, sets: 16);
        var sources = new[] { IPAddress.Loopback, IPAddress.IPv6Loopback, IPAddress.Parse("192.0.2.7") };
        var calls = 0L;
        var admitted = 0;
        var allocated = ChronoGuard.Tests.Support.Allocations.Least(() =>
        {
            var source = sources[calls % 3];
            admitted += limiter.TryAdmit(source, calls++ / 100, "flood.example", out _) ? 1 : 0;
        }, iterations: 10_000);

        Assert.Equal(0, allocated);
        Assert.True(admitted > 0 && admitted < calls);
    }
}
