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
    public void Address_blocks_match_IP_literal_hosts_by_address_with_their_ports_and_nothing_else()
    {
        List<string> patterns = [];
        foreach (var entry in (string[])["10.0.0.0/8", "10.1.0.0/16:5432", "192.168.1.0/24:8000-8100", "2001:db8::/32", "0.0.0.0/0:22", "10.1.2.3"])
        {
            Assert.Null(DomainNames.TryNormalizeEntry(entry, out var p));
            patterns.Add(p);
        }

        var automaton = DomainAutomaton.Build(patterns);
        var buffer = new int[automaton.MaxMatches];
        int[] On(string host, int port) => [.. buffer.AsSpan(0, automaton.Match(Encoding.ASCII.GetBytes(host), port, buffer)).ToArray().Order()];

        Assert.Equal([0], On("10.200.0.1", 443));
        Assert.Equal([0, 1, 5], On("10.1.2.3", 5432));
        Assert.Equal([0, 5], On("10.1.2.3", 443));
        Assert.Equal([2], On("192.168.1.77", 8080));
        Assert.Empty(On("192.168.1.77", 8101));
        Assert.Equal([3], On("2001:db8:ffff::1", 443));
        Assert.Equal([3], On("[2001:DB8::1]", 443));
        Assert.Equal([0], On("::ffff:10.9.9.9", 443));
        Assert.Equal([4], On("8.8.8.8", 22));
        // Text that is not exactly an address is not one: leading zeros, five parts, a name.
        foreach (var host in (string[])["010.0.0.1", "10.0.0.1.5", "10.0.0", "10.0.0.256", "10.0.0.1.", "ten.0.0.1", "10..0.1", ""])
        {
            Assert.Empty(On(host, 443));
        }
    }

    [Fact]
    public void Many_apart_blocks_need_room_only_for_the_ones_nested_around_one_address()
    {
        var patterns = Enumerable.Range(0, 1000).Select(i => $"10.{i / 256}.{i % 256}.0/24").Append("10.0.0.0/8").Append("10.0.0.0/16").ToList();
        var automaton = DomainAutomaton.Build(patterns);

        Assert.Equal(3, automaton.MaxMatches);
        var buffer = new int[automaton.MaxMatches];
        Assert.Equal(3, automaton.Match(Encoding.ASCII.GetBytes("10.0.0.9"), 443, buffer));
    }

    [Theory]
    [InlineData("10.0.0.1/8")]
    [InlineData("10.0.0.0/33")]
    [InlineData("2001:db8::/32:22")]
    [InlineData("10.0.0.0/8:0")]
    [InlineData("/8")]
    public void An_address_block_with_host_bits_a_bad_prefix_or_a_port_it_cannot_take_is_refused(string entry)
    {
        Assert.NotNull(DomainNames.TryNormalizeEntry(entry, out _));
    }

    [Fact]
    public void Random_IPv4_hosts_agree_with_a_naive_block_check()
    {
        var random = new Random(1010);
        var blocks = new List<(uint Base, int Prefix)>();
        var patterns = new List<string>();
        for (var i = 0; i < 200; i++)
        {
            var prefix = random.Next(0, 33);
            var mask = prefix == 0 ? 0u : uint.MaxValue << (32 - prefix);
            var b = (uint)random.NextInt64(0, 1L << 32) & mask;
            blocks.Add((b, prefix));
            patterns.Add($"{b >> 24}.{(b >> 16) & 255}.{(b >> 8) & 255}.{b & 255}/{prefix}");
        }

        var automaton = DomainAutomaton.Build(patterns);
        var buffer = new int[automaton.MaxMatches];
        for (var i = 0; i < 5000; i++)
        {
            // Half the hosts inside a block, half anywhere.
            var (near, nearPrefix) = blocks[random.Next(blocks.Count)];
            var a = random.Next(2) == 0 ? near | ((uint)random.NextInt64(0, 1L << 32) & (nearPrefix == 32 ? 0u : uint.MaxValue >> nearPrefix)) : (uint)random.NextInt64(0, 1L << 32);
            var host = $"{a >> 24}.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255}";
            var expected = Enumerable.Range(0, blocks.Count).Where(j => blocks[j].Prefix == 0 || (a >> (32 - blocks[j].Prefix)) == (blocks[j].Base >> (32 - blocks[j].Prefix))).Select(j => patterns[j]).ToHashSet();
            var actual = buffer.AsSpan(0, automaton.Match(Encoding.ASCII.GetBytes(host), 443, buffer)).ToArray().Select(id => patterns[id]).ToHashSet();
            Assert.True(expected.SetEquals(actual), $"{host}: expected [{string.Join(", ", expected)}], got [{string.Join(", ", actual)}]");
        }
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
