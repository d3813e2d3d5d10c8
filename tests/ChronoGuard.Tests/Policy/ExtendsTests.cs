using System.Text;
using ChronoGuard.Policy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Policy;

/// <summary><c>extends</c> compiles in time and memory linear in the file, and merges exactly like a naive walk.</summary>
public sealed class ExtendsTests
{
    private static string Chain(int depth)
    {
        var sb = new StringBuilder();
        sb.Append("""{ "version": 1, "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p0"] } ], "policies": [""");
        for (var i = 0; i < depth; i++)
        {
            var extends = i + 1 < depth ? ", \"extends\": [\"p" + (i + 1) + "\"]" : string.Empty;
            sb.Append(i == 0 ? string.Empty : ",").Append("{ \"name\": \"p" + i + "\", \"priority\": " + i + ", \"allowedDomains\": [\"d" + i + ".example\"]" + extends + " }");
        }

        return sb.Append("] }").ToString();
    }

    [Fact]
    public void A_deep_chain_compiles_with_allocation_linear_in_its_size()
    {
        // Quadratic merging cost 244 MB at 5,000 and 2.4 GB at 20,000 (10x for 4x the depth).
        var small = CompileChain(5_000);
        var large = CompileChain(20_000);
        Assert.True(large < 16_384L * 20_000, $"{large:N0} bytes allocated for a 20,000-deep chain");
        Assert.True(large < small * 6, $"5,000 deep: {small:N0} bytes; 20,000 deep: {large:N0} bytes: not linear");
    }

    private static long CompileChain(int depth)
    {
        using var dir = new TempDir();
        var path = dir.File("chain.json");
        File.WriteAllText(path, Chain(depth).Replace("$TOKEN", PolicyFixture.TokenSha, StringComparison.Ordinal));

        var before = GC.GetAllocatedBytesForCurrentThread();
        var policy = PolicyLoader.Load(path, new AgentRegistry(), 16, out _);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        var bot = policy.AgentsById["bot"];
        Assert.Equal(depth, bot.Order[0].Lineage.Length);
        Assert.Equal(depth, policy.MergedList(bot.Order[0], blocked: false).Length);
        Assert.True(policy.Decide(bot, new RequestFacts(Encoding.ASCII.GetBytes($"d{depth - 1}.example"), 443, "CONNECT"u8, default, default, null, true), DateTimeOffset.UtcNow, 0).IsAllow);
        return allocated;
    }

    [Fact]
    public void Merged_lists_lineages_and_rules_match_a_naive_walk_on_random_dags()
    {
        var r = new Random(1122);
        for (var round = 0; round < 60; round++)
        {
            var n = r.Next(1, 12);
            var parents = new List<int>[n];
            var allowed = new List<int>[n];
            var blocked = new List<int>[n];
            var rulePriority = new int[n];
            for (var i = 0; i < n; i++)
            {
                // Only later policies as parents: a DAG in any shape, diamonds included.
                parents[i] = [.. Enumerable.Range(i + 1, n - i - 1).Where(_ => r.Next(3) == 0).OrderBy(_ => r.Next())];
                var domains = Enumerable.Range(0, 8).OrderBy(_ => r.Next()).Take(r.Next(0, 5)).ToList();
                var split = r.Next(domains.Count + 1);
                allowed[i] = domains[..split];
                blocked[i] = domains[split..];
                rulePriority[i] = r.Next(3);
            }

            var names = Enumerable.Range(0, n).Select(i => $"p{i}").OrderBy(_ => r.Next()).ToArray();
            var agents = Enumerable.Range(0, r.Next(1, 4)).Select(a => (Id: $"a{a}", Policies: Enumerable.Range(0, n).Where(_ => r.Next(3) == 0).ToList())).ToList();
            var json = new StringBuilder("""{ "version": 1, "agents": [""");
            json.AppendJoin(",", agents.Select(a => $$"""{ "id": "{{a.Id}}", "tokenSha256": "$TOKEN", "policies": [{{string.Join(",", a.Policies.Select(p => $"\"{names[p]}\""))}}] }"""));
            json.Append("""], "policies": [""");
            json.AppendJoin(",", Enumerable.Range(0, n).Select(i => $$"""
                { "name": "{{names[i]}}", "priority": {{r.Next(5)}}, "extends": [{{string.Join(",", parents[i].Select(p => $"\"{names[p]}\""))}}],
                  "allowedDomains": [{{string.Join(",", allowed[i].Select(d => $"\"d{d}.test\""))}}],
                  "blockedDomains": [{{string.Join(",", blocked[i].Select(d => $"\"d{d}.test\""))}}],
                  "rules": [ { "name": "r{{i}}", "priority": {{rulePriority[i]}}, "action": "log" } ] }
                """));
            json.Append("] }");
            var policy = PolicyFixture.Compile(json.ToString());

            foreach (var (id, named) in agents)
            {
                foreach (var p in policy.AgentsById[id].Order)
                {
                    var self = Array.IndexOf(names, p.Name);
                    var lineage = NaiveLineage(self, parents);
                    Assert.Equal(lineage.Select(i => names[i]), p.Lineage);
                    Assert.Equal(lineage.SelectMany(i => allowed[i]).Distinct().Select(d => $"d{d}.test").Order(), policy.MergedList(p, blocked: false).Order());
                    Assert.Equal(lineage.SelectMany(i => blocked[i]).Distinct().Select(d => $"d{d}.test").Order(), policy.MergedList(p, blocked: true).Order());
                    Assert.Equal(lineage.OrderBy(i => rulePriority[i]).Select(i => $"r{i}"), p.Rules.Select(x => x.Name));
                }
            }
        }
    }

    /// <summary>Self, then parents depth-first in the order written, each once: recursion, as the SPEC reads.</summary>
    private static List<int> NaiveLineage(int self, List<int>[] parents)
    {
        var order = new List<int>();
        void Visit(int n)
        {
            if (order.Contains(n))
            {
                return;
            }

            order.Add(n);
            foreach (var p in parents[n])
            {
                Visit(p);
            }
        }

        Visit(self);
        return order;
    }

    [Theory]
    [InlineData("""{ "name": "a", "extends": ["b"] }, { "name": "b", "extends": ["c"] }, { "name": "c", "extends": ["a"] }""", "$.policies[0].extends: cycle: a -> b -> c -> a")]
    [InlineData("""{ "name": "x", "extends": ["b"] }, { "name": "b", "extends": ["c"] }, { "name": "c", "extends": ["b"] }""", "$.policies[1].extends: cycle: b -> c -> b")]
    [InlineData("""{ "name": "a", "extends": ["a"] }""", "$.policies[0].extends: cycle: a -> a")]
    public void A_cycle_is_named_from_its_first_policy(string policies, string expected)
    {
        Assert.EndsWith(expected, PolicyFixture.LoadError($$"""{ "version": 1, "policies": [ {{policies}} ] }"""), StringComparison.Ordinal);
    }
}
