using System.Text;
using ChronoGuard.Analytics;
using Xunit.Abstractions;

namespace ChronoGuard.Tests.Analytics;

public sealed class NewDomainWindowTests(ITestOutputHelper output)
{
    [Fact]
    public void New_domains_count_for_five_minutes_and_repeats_never_count_again()
    {
        var window = new NewDomainWindow(agentCapacity: 2);
        Assert.True(window.Record(0, H("a"), 0));
        Assert.True(window.Record(0, H("b"), 0));
        Assert.False(window.Record(0, H("a"), 0));
        Assert.True(window.Record(0, H("c"), 1));
        Assert.False(window.Record(0, H("a"), 1));
        Assert.True(window.Record(0, H("d"), 4));
        Assert.True(window.Record(1, H("a"), 4));

        Assert.Equal(2, window.Count(0, 0));
        Assert.Equal(3, window.Count(0, 1));
        Assert.Equal(4, window.Count(0, 4));
        Assert.Equal(2, window.Count(0, 5));
        Assert.Equal(1, window.Count(0, 6));
        Assert.Equal(1, window.Count(0, 8));
        Assert.Equal(0, window.Count(0, 9));
        Assert.Equal(1, window.Count(1, 4));

        // Minute 5 reuses minute 0's bucket: the stale count is replaced, not added to.
        Assert.False(window.Record(0, H("b"), 5));
        Assert.True(window.Record(0, H("e"), 5));
        Assert.Equal(3, window.Count(0, 5));
        Assert.Equal(0, window.Count(7, 5));

        // An agent index beyond the capacity grows the table.
        Assert.True(window.Record(9, H("a"), 5));
        Assert.Equal(1, window.Count(9, 5));
    }

    [Fact]
    public void A_random_sequence_agrees_with_a_naive_reference_up_to_a_small_undercount()
    {
        const int Agents = 4;
        const int Minutes = 30;
        var random = new Random(99);
        var window = new NewDomainWindow(agentCapacity: Agents);
        var seen = Enumerable.Range(0, Agents).Select(_ => new HashSet<int>()).ToArray();
        var firstSeen = new List<(long Minute, int Agent)>();
        long missed = 0;
        long compared = 0;
        long largestGap = 0;
        for (long minute = 0; minute < Minutes; minute++)
        {
            // Each agent draws from its own pool of 4,000 domains, skewed so new ones keep arriving; at
            // 4,000 domains the filter misses about 0.35% of new ones.
            for (var i = 0; i < 4_000; i++)
            {
                var agent = random.Next(Agents);
                var domain = (int)(4_000 * Math.Pow(random.NextDouble(), 2));
                var isNew = window.Record(agent, H($"{agent}-{domain}"), minute);
                var trulyNew = seen[agent].Add(domain);
                Assert.False(isNew && !trulyNew, $"agent {agent} domain {domain} counted as new twice");
                if (trulyNew)
                {
                    firstSeen.Add((minute, agent));
                    missed += isNew ? 0 : 1;
                }
            }

            for (var agent = 0; agent < Agents; agent++)
            {
                var expected = firstSeen.Count(f => f.Agent == agent && f.Minute > minute - NewDomainWindow.WindowMinutes && f.Minute <= minute);
                var actual = window.Count(agent, minute);
                Assert.True(actual <= expected, $"minute {minute} agent {agent}: {actual} > {expected}");
                Assert.True(expected - actual <= 2 + (expected / 50), $"minute {minute} agent {agent}: {actual} vs {expected}");
                largestGap = Math.Max(largestGap, expected - actual);
                compared++;
            }
        }

        output.WriteLine($"{firstSeen.Count} first sightings, {missed} missed by the filter; {compared} gauge readings, largest undercount {largestGap}");
        Assert.True(missed <= firstSeen.Count / 200, $"{missed} of {firstSeen.Count} new domains missed");
    }

    [Fact]
    public void Aging_the_filter_keeps_the_working_set_while_thousands_of_new_domains_pass()
    {
        var window = new NewDomainWindow(agentCapacity: 1);
        var workingSet = Enumerable.Range(0, 200).Select(i => H($"work-{i}")).ToArray();
        var firstRound = workingSet.Count(hash => window.Record(0, hash, 0));

        var freshCounted = 0;
        var repeatsCounted = 0;
        const int Fresh = 60_000;
        for (var i = 0; i < Fresh; i++)
        {
            freshCounted += window.Record(0, H($"fresh-{i}"), 1) ? 1 : 0;
            if (i % 500 == 0)
            {
                foreach (var hash in workingSet)
                {
                    repeatsCounted += window.Record(0, hash, 1) ? 1 : 0;
                }
            }
        }

        output.WriteLine($"{freshCounted} of {Fresh} fresh domains counted; {repeatsCounted} working-set repeats counted");
        Assert.Equal(0, repeatsCounted);
        Assert.InRange(freshCounted, (int)(Fresh * 0.85), Fresh);
        Assert.Equal(firstRound + freshCounted, window.Count(0, 1));
    }

    private static ulong H(string domain) => CountMinSketch.Hash(Encoding.ASCII.GetBytes(domain + ".example.com"));
}
