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
            var n = automaton.MatchAnyPort(Encoding.ASCII.GetBytes(host), buffer);
            var actual = buffer[..n].ToArray().Select(id => patterns[id]).ToHashSet();
            Assert.True(expected.SetEquals(actual), $"{host}: expected [{string.Join(", ", expected)}], got [{string.Join(", ", actual)}]");
        }
    }

    [Fact]
    public void Random_patterns_with_ports_agree_with_a_naive_list_scan_in_a_buffer_of_MaxMatches()
    {
        var random = new Random(1616);
        string[] labels = ["a", "b", "ab", "git", "x-1", "com"];
        string Domain(int maxLabels) => string.Join('.', Enumerable.Range(0, random.Next(1, maxLabels + 1)).Select(_ => labels[random.Next(labels.Length)]));
        for (var round = 0; round < 25; round++)
        {
            var patterns = new List<string>();
            for (var i = 0; i < 300; i++)
            {
                var name = random.Next(3) == 0 ? "*." + Domain(2) : Domain(3);
                var lo = random.Next(1, 10);
                patterns.Add(random.Next(3) switch { 0 => name, 1 => $"{name}:{lo}", _ => $"{name}:{lo}-{lo + random.Next(0, 4)}" });
            }

            var automaton = DomainAutomaton.Build(patterns);
            var buffer = new int[automaton.MaxMatches];
            for (var i = 0; i < 400; i++)
            {
                var host = Domain(5);
                var port = random.Next(1, 15);
                var expected = new HashSet<string>();
                foreach (var p in patterns)
                {
                    var colon = p.IndexOf(':', StringComparison.Ordinal);
                    var name = colon < 0 ? p : p[..colon];
                    var ports = colon < 0 ? null : p[(colon + 1)..].Split('-').Select(int.Parse).ToArray();
                    if (Naive([name], host).Count > 0 && (ports is null || (ports[0] <= port && port <= ports[^1])))
                    {
                        expected.Add(p);
                    }
                }

                var actual = buffer[..automaton.Match(Encoding.ASCII.GetBytes(host), port, buffer)].Select(id => patterns[id]).ToList();
                Assert.True(expected.SetEquals(actual) && actual.Count == actual.Distinct().Count(), $"{host}:{port}: expected [{string.Join(", ", expected)}], got [{string.Join(", ", actual)}]");
            }
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

    [Fact]
    public void A_port_scoped_pattern_matches_only_on_its_ports_and_one_without_matches_on_every_port()
    {
        var automaton = DomainAutomaton.Build(["github.com:22", "github.com", "*.example.org:8000-8100", "*.example.org:8100-8200", "example.org:8000"]);

        Assert.Equal([0, 1], Matches(automaton, "github.com", 22));
        Assert.Equal([1], Matches(automaton, "github.com", 21));
        Assert.Equal([1], Matches(automaton, "github.com", 23));
        Assert.Empty(Matches(automaton, "a.example.org", 7999));
        Assert.Equal([2], Matches(automaton, "a.example.org", 8000));
        Assert.Equal([2, 3], Matches(automaton, "a.b.example.org", 8100));
        Assert.Equal([3], Matches(automaton, "a.example.org", 8101));
        Assert.Equal([3], Matches(automaton, "a.example.org", 8200));
        Assert.Empty(Matches(automaton, "a.example.org", 8201));
        Assert.Equal([4], Matches(automaton, "example.org", 8000));
        Assert.Empty(Matches(automaton, "example.org", 8100));
    }

    [Fact]
    public void MaxMatches_is_the_most_one_host_can_match_whatever_its_port()
    {
        Assert.Equal(0, DomainAutomaton.Build([]).MaxMatches);
        Assert.Equal(1, DomainAutomaton.Build(["a.com", "b.com"]).MaxMatches);

        // *.com, *.b.com and a.b.com on one path; b.com ends on the path but not with a.b.com.
        Assert.Equal(3, DomainAutomaton.Build(["*.com", "b.com", "*.b.com", "a.b.com", "x.org"]).MaxMatches);

        // A wildcard inside a label is never written (*.b.com does not match x.ab.com): not counted.
        Assert.Equal(1, DomainAutomaton.Build(["*.b.com", "*.ab.com", "*.cab.com"]).MaxMatches);

        // Ports multiply the outputs of one name: three entries for a.com and *.com's, all matched by MatchAnyPort.
        var ports = DomainAutomaton.Build(["a.com:1", "a.com:2-3", "a.com", "*.com:9"]);
        Assert.Equal(4, ports.MaxMatches);
        var buffer = new int[ports.MaxMatches];
        Assert.Equal(4, ports.MatchAnyPort("a.com"u8, buffer));
        Assert.Equal(1, ports.MatchAnyPort("x.a.com"u8, buffer));
        Assert.Equal(2, ports.Match("a.com"u8, 9, buffer));
    }

    private static int[] Matches(DomainAutomaton automaton, string host, int port = 443)
    {
        Span<int> buffer = stackalloc int[128];
        var n = automaton.Match(Encoding.ASCII.GetBytes(host), port, buffer);
        var result = buffer[..n].ToArray();
        Array.Sort(result);
        return result;
    }
}
