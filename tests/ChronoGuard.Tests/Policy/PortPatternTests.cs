using System.Diagnostics;
using System.Text;
using ChronoGuard.Policy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Policy;

/// <summary>
/// Port-scoped domain patterns (SPEC §8: <c>github.com:22</c>, <c>*.example.org:8000-8100</c>): how
/// they load, how the port step (§4) reads them beside <c>allowedPorts</c>, and that the domain step
/// treats them as matching only on their ports.
/// </summary>
public sealed class PortPatternTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 25, 10, 0, 0, TimeSpan.Zero);

    private const string Json = """
        {
          "version": 1, "defaultAction": "deny",
          "network": { "allowedPorts": [443, 80] },
          "agents": [
            { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["team", "org"] },
            { "id": "other", "tokenSha256": "$TOKEN", "policies": ["plain"] }
          ],
          "policies": [
            { "name": "org", "priority": 500, "blockedDomains": ["evil.example:2222", "secret.example"], "allowedDomains": ["internal.example:9000-9100"] },
            { "name": "team", "priority": 100,
              "allowedDomains": ["github.com:22", "github.com", "*.example.org:8000-8100", "api.example:443", "secret.example:22", "evil.example:2000-3000"] },
            { "name": "plain", "priority": 100, "allowedDomains": ["plain.example", "*.example.org"] }
          ],
          "grants": [ { "agent": "bot", "domains": ["granted.example:22", "granted.example:443"], "expires": "2026-11-25T12:00:00Z", "reason": "INC-2" } ]
        }
        """;

    private readonly CompiledPolicy _policy = PolicyFixture.Compile(Json);

    private (string, string) Decide(string agent, string host, int port)
    {
        var facts = new RequestFacts(Encoding.ASCII.GetBytes(host), port, "CONNECT"u8, default, default, null, isConnect: true);
        var result = _policy.Decide(_policy.AgentsById[agent], facts, Now, Stopwatch.GetTimestamp());
        return (DecisionNames.Name(result.Decision), result.Reason);
    }

    [Theory]
    [InlineData("github.com", 22, "ALLOW", Reasons.Allowed)]            // admitted by github.com:22 although 22 is not in allowedPorts
    [InlineData("github.com", 443, "ALLOW", Reasons.Allowed)]           // github.com without a port, on an allowedPorts port
    [InlineData("github.com", 23, "BLOCK", Reasons.PortNotAllowed)]     // same host, a port neither lists
    [InlineData("a.example.org", 8000, "ALLOW", Reasons.Allowed)]       // range edges: lo, hi, lo-1, hi+1
    [InlineData("a.b.example.org", 8100, "ALLOW", Reasons.Allowed)]
    [InlineData("a.example.org", 7999, "BLOCK", Reasons.PortNotAllowed)]
    [InlineData("a.example.org", 8101, "BLOCK", Reasons.PortNotAllowed)]
    [InlineData("example.org", 8000, "BLOCK", Reasons.PortNotAllowed)]  // *.example.org:… does not match the bare name
    [InlineData("api.example", 443, "ALLOW", Reasons.Allowed)]
    [InlineData("api.example", 80, "DENY", Reasons.DefaultDeny)]        // 80 passes allowedPorts, but api.example:443 does not match on 80
    [InlineData("internal.example", 9050, "ALLOW", Reasons.Allowed)]    // a pattern of the agent's lower-priority policy admits the port too
    [InlineData("secret.example", 22, "BLOCK", Reasons.DomainBlocked)]  // the port is admitted, then blocked wins
    [InlineData("evil.example", 2222, "BLOCK", Reasons.DomainBlocked)]  // a port-scoped block holds on its port…
    [InlineData("evil.example", 2223, "ALLOW", Reasons.Allowed)]        // …and only there
    [InlineData("granted.example", 443, "ALLOW", "grant:INC-2")]
    [InlineData("granted.example", 22, "BLOCK", Reasons.PortNotAllowed)] // a grant does not open a port (it is not a policy)
    [InlineData("granted.example", 80, "DENY", Reasons.DefaultDeny)]    // a grant with ports applies only on them
    public void Bot(string host, int port, string decision, string reason) =>
        Assert.Equal((decision, reason), Decide("bot", host, port));

    [Theory]
    [InlineData("github.com", 22, "BLOCK", Reasons.PortNotAllowed)]     // another agent's port-scoped pattern admits nothing here
    [InlineData("a.example.org", 8000, "BLOCK", Reasons.PortNotAllowed)] // *.example.org without a port follows allowedPorts
    [InlineData("a.example.org", 443, "ALLOW", Reasons.Allowed)]
    [InlineData("plain.example", 80, "ALLOW", Reasons.Allowed)]
    public void Other(string host, int port, string decision, string reason) =>
        Assert.Equal((decision, reason), Decide("other", host, port));

    [Fact]
    public void Equal_entries_share_one_canonical_pattern()
    {
        var policy = PolicyFixture.Compile("""
            { "version": 1, "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
              "policies": [ { "name": "p", "allowedDomains": ["GitHub.COM.:022", "github.com:22-22", " github.com:22 ", "*.Bücher.de:8000-8100"] } ] }
            """);

        Assert.Equal(["github.com:22", "*.xn--bcher-kva.de:8000-8100"], policy.Patterns);
        Assert.Equal([true, true], policy.PortScoped);
    }

    [Theory]
    [InlineData("github.com:0", "port 0 is outside 1-65535")]
    [InlineData("github.com:65536", "port 65536 is outside 1-65535")]
    [InlineData("github.com:99999999999", "port 99999999999 is outside 1-65535")]
    [InlineData("github.com:1-65536", "port 65536 is outside 1-65535")]
    [InlineData("*.example.org:8100-8000", "port range 8100-8000 runs backwards (write 8000-8100)")]
    [InlineData("github.com:ssh", "port \"ssh\" is not a number (write name:port or name:low-high)")]
    [InlineData("github.com: 22", "port \" 22\" is not a number (write name:port or name:low-high)")]
    [InlineData("github.com:+22", "port \"+22\" is not a number (write name:port or name:low-high)")]
    [InlineData("github.com:22-23-24", "port \"23-24\" is not a number (write name:port or name:low-high)")]
    [InlineData("github.com:", "a port is missing after ':' (write name:port or name:low-high)")]
    [InlineData("github.com:22-", "a port is missing after ':' (write name:port or name:low-high)")]
    [InlineData("github.com:-22", "a port is missing after ':' (write name:port or name:low-high)")]
    [InlineData("github.com:22:23", "not a domain pattern: brackets or a second ':' (an IPv6 address is allowed with network.allowedCidrs; a port is written name:port)")]
    [InlineData("[::1]:22", "not a domain pattern: brackets or a second ':' (an IPv6 address is allowed with network.allowedCidrs; a port is written name:port)")]
    [InlineData("[2001:db8::1]", "not a domain pattern: brackets or a second ':' (an IPv6 address is allowed with network.allowedCidrs; a port is written name:port)")]
    [InlineData("[example.com]:22", "not a domain pattern: brackets or a second ':' (an IPv6 address is allowed with network.allowedCidrs; a port is written name:port)")]
    [InlineData(":22", "empty domain")]
    [InlineData("*.:22", "empty domain")]
    [InlineData("git*hub.com:22", "a wildcard is only allowed as a leading \"*.\" label")]
    public void A_bad_port_is_a_load_error_naming_the_entry(string entry, string problem)
    {
        foreach (var (list, path) in new[] { ("allowedDomains", "$.policies[0].allowedDomains[1]"), ("blockedDomains", "$.policies[0].blockedDomains[1]") })
        {
            var error = PolicyFixture.LoadError($$"""
                { "version": 1, "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
                  "policies": [ { "name": "p", "{{list}}": ["ok.example:443", "{{entry}}"] } ] }
                """);
            Assert.EndsWith($": {path}: \"{entry}\": {problem}", error, StringComparison.Ordinal);
        }

        var grant = PolicyFixture.LoadError($$"""
            { "version": 1, "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] } ], "policies": [ { "name": "p" } ],
              "grants": [ { "agent": "bot", "domains": ["{{entry}}"], "expires": "2026-11-25T12:00:00Z" } ] }
            """);
        Assert.Contains(": $.grants[0].domains[0]: ", grant, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("github.com:22", "github.com", "\"github.com:22\" is allowed, but \"github.com\" blocks all its ports in policy \"p\"")]
    [InlineData("github.com:8000-8100", "github.com:7000-9000", "\"github.com:8000-8100\" is allowed, but \"github.com:7000-9000\" blocks all its ports in policy \"p\"")]
    [InlineData("*.github.com:22", "*.github.com:22", "\"*.github.com:22\" is both allowed and blocked in policy \"p\"")]
    [InlineData("github.com", "github.com", "\"github.com\" is both allowed and blocked in policy \"p\"")]
    public void An_allow_the_same_policy_blocks_on_every_port_is_a_load_error(string allowed, string blocked, string problem)
    {
        var error = PolicyFixture.LoadError($$"""
            { "version": 1, "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
              "policies": [ { "name": "p", "allowedDomains": ["{{allowed}}"], "blockedDomains": ["{{blocked}}"] } ] }
            """);
        Assert.EndsWith($": $.policies[0]: {problem}", error, StringComparison.Ordinal);
    }

    [Fact]
    public void A_block_on_some_ports_of_an_allowed_name_leaves_the_other_ports_allowed()
    {
        var policy = PolicyFixture.Compile("""
            { "version": 1, "network": { "allowedPorts": [22, 443] },
              "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
              "policies": [ { "name": "p", "allowedDomains": ["github.com", "*.github.com:20-30"], "blockedDomains": ["github.com:22", "*.github.com:22"] } ] }
            """);
        var bot = policy.AgentsById["bot"];
        (Decision, string) At(string host, int port)
        {
            var r = policy.Decide(bot, new RequestFacts(Encoding.ASCII.GetBytes(host), port, "CONNECT"u8, default, default, null, true), Now, 0);
            return (r.Decision, r.Reason);
        }

        Assert.Equal((Decision.Block, Reasons.DomainBlocked), At("github.com", 22));
        Assert.Equal((Decision.Allow, Reasons.Allowed), At("github.com", 443));
        Assert.Equal((Decision.Block, Reasons.DomainBlocked), At("x.github.com", 22));
        Assert.Equal((Decision.Allow, Reasons.Allowed), At("x.github.com", 21));
    }

    [Fact]
    public void A_name_listed_with_more_ports_than_one_host_may_match_is_a_load_error()
    {
        var entries = string.Join(", ", Enumerable.Range(1, PolicyCompiler.MaxMatchesPerHost + 1).Select(p => $"\"a.example:{p}\""));
        var error = PolicyFixture.LoadError($$"""
            { "version": 1, "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
              "policies": [ { "name": "p", "allowedDomains": [{{entries}}] } ] }
            """);
        Assert.EndsWith($": $.policies: one host name can match {PolicyCompiler.MaxMatchesPerHost + 1} patterns (a name listed with many ports or ranges); at most {PolicyCompiler.MaxMatchesPerHost}: merge its ports into ranges", error, StringComparison.Ordinal);

        // At the bound every pattern still matches: none is dropped from a full buffer.
        entries = string.Join(", ", Enumerable.Range(1, PolicyCompiler.MaxMatchesPerHost - 1).Select(p => $"\"a.example:{p}-{p + 2000}\""));
        var policy = PolicyFixture.Compile($$"""
            { "version": 1, "network": { "allowedPorts": [1] },
              "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
              "policies": [ { "name": "p", "allowedDomains": [{{entries}}], "blockedDomains": ["a.example:1024"] } ] }
            """);
        var blocked = policy.Decide(policy.AgentsById["bot"], new RequestFacts("a.example"u8, 1024, "CONNECT"u8, default, default, null, true), Now, 0);
        Assert.Equal(Reasons.DomainBlocked, blocked.Reason);
    }

    [Fact]
    public void The_deepest_policy_without_ports_still_fits_the_bound()
    {
        // A 253-character name of 127 labels, allowed, and a wildcard for each of its 126 suffixes.
        var labels = Enumerable.Repeat("a", 127).ToArray();
        var host = string.Join('.', labels);
        var entries = Enumerable.Range(1, 126).Select(n => $"\"*.{string.Join('.', labels[^n..])}\"").Append($"\"{host}\"");
        var policy = PolicyFixture.Compile($$"""
            { "version": 1, "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
              "policies": [ { "name": "p", "allowedDomains": [{{string.Join(", ", entries)}}] } ] }
            """);

        Assert.Equal(127, policy.Automaton.MaxMatches);
        Assert.True(policy.Decide(policy.AgentsById["bot"], new RequestFacts(Encoding.ASCII.GetBytes(host), 443, "CONNECT"u8, default, default, null, true), Now, 0).IsAllow);
    }

    [Fact]
    public void Decide_allocates_nothing_with_port_scoped_patterns()
    {
        var bot = _policy.AgentsById["bot"];
        byte[][] hosts = [Encoding.ASCII.GetBytes("github.com"), Encoding.ASCII.GetBytes("a.example.org"), Encoding.ASCII.GetBytes("evil.example"), Encoding.ASCII.GetBytes("nowhere.example")];
        int[] ports = [22, 443, 8050, 8101, 2222, 2223];
        var sum = 0;

        var allocated = Allocations.Least(() =>
        {
            foreach (var host in hosts)
            {
                foreach (var port in ports)
                {
                    sum += _policy.Decide(bot, new RequestFacts(host, port, "CONNECT"u8, default, default, null, true), Now, 0).Status;
                }
            }
        });

        Assert.Equal(0, allocated);
        Assert.True(sum > 0);
    }

    /// <summary>
    /// The compiled matcher against SPEC §4/§8 written as a list scan: random names with and without
    /// ports and ranges in the allowed and blocked lists of three policies (two named by one agent,
    /// one by another), random allowedPorts, random hosts and ports.
    /// </summary>
    [Fact]
    public void Random_policies_decide_as_a_naive_list_scan_does()
    {
        var random = new Random(2216);
        string[] labels = ["a", "b", "git", "x-1", "example", "org"];
        string Name(int maxLabels) => string.Join('.', Enumerable.Range(0, random.Next(1, maxLabels + 1)).Select(_ => labels[random.Next(labels.Length)]));
        string Entry()
        {
            var name = random.Next(3) == 0 ? "*." + Name(2) : Name(3);
            var lo = random.Next(1, 13);
            return random.Next(3) switch
            {
                0 => name,
                1 => $"{name}:{lo}",
                _ => $"{name}:{lo}-{Math.Min(12, lo + random.Next(0, 5))}",
            };
        }

        var checkedRequests = 0;
        for (var round = 0; round < 150; round++)
        {
            var lists = new (List<string> Allowed, List<string> Blocked)[3];
            for (var p = 0; p < 3; p++)
            {
                var blocked = Enumerable.Range(0, random.Next(0, 4)).Select(_ => Entry()).Distinct().ToList();
                var allowed = Enumerable.Range(0, random.Next(0, 8)).Select(_ => Entry()).Distinct()
                    .Where(a => !blocked.Exists(b => Covers(Parse(b), Parse(a)))).ToList();
                lists[p] = (allowed, blocked);
            }

            var allowedPorts = Enumerable.Range(1, 12).Where(_ => random.Next(3) == 0).DefaultIfEmpty(12).ToArray();
            var defaultAllow = random.Next(2) == 0;
            string Quoted(List<string> l) => string.Join(", ", l.Select(e => $"\"{e}\""));
            var policy = PolicyFixture.Compile($$"""
                { "version": 1, "defaultAction": "{{(defaultAllow ? "allow" : "deny")}}", "network": { "allowedPorts": [{{string.Join(", ", allowedPorts)}}] },
                  "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p0", "p1"] }, { "id": "other", "tokenSha256": "$TOKEN", "policies": ["p2"] } ],
                  "policies": [
                    { "name": "p0", "priority": 1, "allowedDomains": [{{Quoted(lists[0].Allowed)}}], "blockedDomains": [{{Quoted(lists[0].Blocked)}}] },
                    { "name": "p1", "priority": 2, "allowedDomains": [{{Quoted(lists[1].Allowed)}}], "blockedDomains": [{{Quoted(lists[1].Blocked)}}] },
                    { "name": "p2", "priority": 1, "allowedDomains": [{{Quoted(lists[2].Allowed)}}], "blockedDomains": [{{Quoted(lists[2].Blocked)}}] } ] }
                """);

            foreach (var (agent, named) in new[] { ("bot", new[] { 0, 1 }), ("other", new[] { 2 }) })
            {
                for (var i = 0; i < 60; i++)
                {
                    var host = Name(4);
                    if (random.Next(4) == 0)
                    {
                        host = host.ToUpperInvariant() + ".";
                    }

                    var port = random.Next(1, 14);
                    var expected = Naive(lists, named, allowedPorts, defaultAllow, host, port);
                    var r = policy.Decide(policy.AgentsById[agent], new RequestFacts(Encoding.ASCII.GetBytes(host), port, "CONNECT"u8, default, default, null, true), Now, 0);
                    Assert.True(expected == (r.Decision, r.Reason, r.Policy),
                        $"round {round}, {agent} {host}:{port}: expected {expected}, got {(r.Decision, r.Reason, r.Policy)}; allowedPorts [{string.Join(",", allowedPorts)}]; "
                        + string.Join("; ", lists.Select((l, p) => $"p{p} allowed [{string.Join(" ", l.Allowed)}] blocked [{string.Join(" ", l.Blocked)}]")));
                    checkedRequests++;
                }
            }
        }

        Assert.Equal(150 * 2 * 60, checkedRequests);
    }

    private static (Decision, string, string?) Naive((List<string> Allowed, List<string> Blocked)[] lists, int[] named, int[] allowedPorts, bool defaultAllow, string host, int port)
    {
        var h = host.TrimEnd('.').ToLowerInvariant();
        bool On((string Name, int Lo, int Hi) p) => p.Lo <= port && port <= p.Hi
            && (p.Name.StartsWith("*.", StringComparison.Ordinal) ? h.EndsWith(p.Name[1..], StringComparison.Ordinal) : h == p.Name);

        var portOk = allowedPorts.Contains(port) || named.Any(n => lists[n].Allowed.Any(a => a.Contains(':', StringComparison.Ordinal) && On(Parse(a))));
        if (!portOk)
        {
            return (Decision.Block, Reasons.PortNotAllowed, null);
        }

        var blockedBy = named.FirstOrDefault(n => lists[n].Blocked.Any(b => On(Parse(b))), -1);
        if (blockedBy >= 0)
        {
            return (Decision.Block, Reasons.DomainBlocked, $"p{blockedBy}");
        }

        var allowedBy = named.FirstOrDefault(n => lists[n].Allowed.Any(a => On(Parse(a))), -1);
        if (allowedBy >= 0)
        {
            return (Decision.Allow, Reasons.Allowed, $"p{allowedBy}");
        }

        return defaultAllow ? (Decision.Allow, Reasons.DefaultAllow, null) : (Decision.Deny, Reasons.DefaultDeny, null);
    }

    private static (string Name, int Lo, int Hi) Parse(string entry)
    {
        var colon = entry.IndexOf(':', StringComparison.Ordinal);
        if (colon < 0)
        {
            return (entry, int.MinValue, int.MaxValue);
        }

        var ports = entry[(colon + 1)..].Split('-');
        return (entry[..colon], int.Parse(ports[0], System.Globalization.CultureInfo.InvariantCulture), int.Parse(ports[^1], System.Globalization.CultureInfo.InvariantCulture));
    }

    private static bool Covers((string Name, int Lo, int Hi) block, (string Name, int Lo, int Hi) allow) =>
        block.Name == allow.Name && block.Lo <= allow.Lo && block.Hi >= allow.Hi;
}
