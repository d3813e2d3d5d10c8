using System.Text;
using ChronoGuard.Policy;

namespace ChronoGuard.Tests.Policy;

public sealed class DomainAutomatonTests
{
    [Fact]
    public void Exact_and_wildcard_patterns_anchor_to_label_boundaries()
    {
        var automaton = DomainAutomaton.Build(["github.com", "*.github.com", "*.com", "gist.github.com"]);

        Assert.Equal([0, 2], Matches(automaton, "github.com"));
        Assert.Equal([1, 2], Matches(automaton, "a.b.github.com"));
        Assert.Equal([1, 2, 3], Matches(automaton, "GIST.GitHub.com."));
        Assert.Equal([2], Matches(automaton, "xgithub.com"));
        Assert.Empty(Matches(automaton, "github.co"));
        Assert.Empty(Matches(automaton, "com"));
    }

    [Fact]
    public void Ten_thousand_random_domains_agree_with_a_naive_suffix_matcher()
    {
        var random = new Random(4242);
        string[] labels = ["a", "b", "ab", "api", "github", "git-hub", "x1", "cdn", "com", "org", "io", "co", "uk", "s3", "xn--bcher-kva", "w_w"];
        string Domain(int maxLabels)
        {
            var n = random.Next(1, maxLabels + 1);
            return string.Join('.', Enumerable.Range(0, n).Select(_ => labels[random.Next(labels.Length)]));
        }

        var patterns = new List<string>();
        for (var i = 0; i < 2000; i++)
        {
            var d = Domain(3);
            patterns.Add(random.Next(2) == 0 ? d : "*." + d);
        }

        var automaton = DomainAutomaton.Build(patterns);
        Span<int> buffer = stackalloc int[128];
        for (var i = 0; i < 10_000; i++)
        {
            var host = Domain(5);
            if (random.Next(4) == 0)
            {
                host = host.ToUpperInvariant();
            }

            if (random.Next(5) == 0)
            {
                host += ".";
            }

            var expected = Naive(patterns, host);
            var n = automaton.Match(Encoding.ASCII.GetBytes(host), buffer);
            var actual = buffer[..n].ToArray().Select(id => patterns[id]).ToHashSet();
            Assert.True(expected.SetEquals(actual), $"{host}: expected [{string.Join(", ", expected)}], got [{string.Join(", ", actual)}]");
        }
    }

    /// <summary>The reference: exact equality, or a wildcard's suffix preceded by a dot, case-insensitive.</summary>
    private static HashSet<string> Naive(List<string> patterns, string host)
    {
        var h = host.TrimEnd('.').ToLowerInvariant();
        var result = new HashSet<string>();
        foreach (var p in patterns)
        {
            if (p.StartsWith("*.", StringComparison.Ordinal) ? h.EndsWith(p[1..], StringComparison.Ordinal) : h == p)
            {
                result.Add(p);
            }
        }

        return result;
    }

    private static int[] Matches(DomainAutomaton automaton, string host)
    {
        Span<int> buffer = stackalloc int[128];
        var n = automaton.Match(Encoding.ASCII.GetBytes(host), buffer);
        var result = buffer[..n].ToArray();
        Array.Sort(result);
        return result;
    }
}
