using System.Diagnostics;
using System.Text;
using ChronoGuard.Policy;

namespace ChronoGuard.Tests.Policy;

/// <summary>agent_domain buckets are bounded, and eviction cannot hand an agent a fresh bucket.</summary>
public sealed class DomainBucketsTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 25, 10, 0, 0, TimeSpan.Zero);

    private const string Json = """
        {
          "version": 1,
          "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
          "policies": [ { "name": "p", "allowedDomains": ["*.test"], "rateLimitScope": "agent_domain", "rateLimits": { "requestsPerMinute": 1, "burst": 1 } } ]
        }
        """;

    [Fact]
    public void Random_subdomains_do_not_grow_the_table_past_its_bound()
    {
        var registry = new AgentRegistry();
        var policy = PolicyFixture.Compile(Json, registry);
        var bot = policy.AgentsById["bot"];
        var t = Stopwatch.GetTimestamp();
        for (var i = 0; i < 50_000; i++)
        {
            // One request per host, a minute apart: every bucket has refilled when the next host comes.
            policy.Decide(bot, Facts($"h{i}.test"), Now, t + (i * 61L * Stopwatch.Frequency));
        }

        Assert.InRange(registry.Get("bot").DomainBuckets["p"].Count, 1, DomainBuckets.Capacity);
    }

    [Fact]
    public void Spraying_hosts_cannot_reset_a_bucket_that_is_still_draining()
    {
        var policy = PolicyFixture.Compile(Json);
        var bot = policy.AgentsById["bot"];
        var t = Stopwatch.GetTimestamp();
        Assert.True(policy.Decide(bot, Facts("mine.test"), Now, t).IsAllow);
        Assert.Equal(Decision.RateLimited, policy.Decide(bot, Facts("mine.test"), Now, t).Decision);

        // Many more hosts than the table holds, all at the same instant: their buckets are drained, none can be evicted.
        var sprayed = 0;
        for (var i = 0; i < DomainBuckets.Capacity * 3; i++)
        {
            sprayed += policy.Decide(bot, Facts($"spray{i}.test"), Now, t).IsAllow ? 1 : 0;
        }

        Assert.Equal(Decision.RateLimited, policy.Decide(bot, Facts("mine.test"), Now, t).Decision);
        Assert.InRange(sprayed, 1, DomainBuckets.Capacity + 1);

        // A minute later mine.test has refilled: one more request, then limited again.
        var later = t + (61 * Stopwatch.Frequency);
        Assert.True(policy.Decide(bot, Facts("mine.test"), Now, later).IsAllow);
        Assert.Equal(Decision.RateLimited, policy.Decide(bot, Facts("mine.test"), Now, later).Decision);
    }

    [Fact]
    public void Each_domain_keeps_its_own_bucket_and_the_table_survives_a_reload()
    {
        var registry = new AgentRegistry();
        var t = Stopwatch.GetTimestamp();
        var first = PolicyFixture.Compile(Json, registry);
        Assert.True(first.Decide(first.AgentsById["bot"], Facts("a.test"), Now, t).IsAllow);
        Assert.True(first.Decide(first.AgentsById["bot"], Facts("b.test"), Now, t).IsAllow);
        var second = PolicyFixture.Compile(Json, registry);
        Assert.Equal(Decision.RateLimited, second.Decide(second.AgentsById["bot"], Facts("A.TEST."), Now, t).Decision);
    }

    private static RequestFacts Facts(string host) => new(Encoding.ASCII.GetBytes(host), 443, "CONNECT"u8, default, default, null, true);
}
