using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace ChronoGuard.Policy;

/// <summary>Validates a <see cref="PolicyDocument"/> against SPEC §4's rules and limits and compiles it.</summary>
internal static partial class PolicyCompiler
{
    public const int MaxAgents = 1000;
    public const int MaxPoliciesPerAgent = 50;
    public const int MaxRulesPerPolicy = 100;
    public const int MaxConditionsPerRule = 20;
    public const int MaxTimeRanges = 10;
    public const int MaxDomainsPerList = 10_000;
    private static readonly TimeSpan RegexTimeout = TimeSpan.FromMilliseconds(50);

    public static CompiledPolicy Compile(PolicyDocument doc, string file, string sha256, AgentRegistry registry, int maxTunnelsPerAgent)
    {
        Exception Fail(string path, string problem) => new PolicyLoadException($"{file}: {path}: {problem}");

        if (doc.Version != 1)
        {
            throw Fail("$.version", $"must be 1 (got {doc.Version})");
        }

        var observe = doc.Mode switch
        {
            null or "enforce" => false,
            "observe" => true,
            _ => throw Fail("$.mode", $"must be \"enforce\" or \"observe\" (got \"{doc.Mode}\")"),
        };
        var defaultAllow = doc.DefaultAction switch
        {
            null or "deny" => false,
            "allow" => true,
            _ => throw Fail("$.defaultAction", $"must be \"allow\" or \"deny\" (got \"{doc.DefaultAction}\")"),
        };

        var network = CompileNetwork(doc.Network, Fail);
        var entries = doc.Policies ?? [];
        var byName = new Dictionary<string, (PolicyEntry Entry, int Index)>(StringComparer.Ordinal);
        for (var i = 0; i < entries.Count; i++)
        {
            var name = entries[i].Name;
            if (string.IsNullOrWhiteSpace(name))
            {
                throw Fail($"$.policies[{i}].name", "is required");
            }

            if (!byName.TryAdd(name, (entries[i], i)))
            {
                throw Fail($"$.policies[{i}].name", $"duplicate policy name \"{name}\"");
            }
        }

        // Patterns: one id per distinct normalized pattern across all lists and grants.
        var patternIds = new Dictionary<string, int>(StringComparer.Ordinal);
        var patterns = new List<string>();
        int PatternId(string raw, string path)
        {
            if (DomainNames.TryNormalizePattern(raw, out var p) is { } error)
            {
                throw Fail(path, $"\"{raw}\": {error}");
            }

            if (!patternIds.TryGetValue(p, out var id))
            {
                id = patterns.Count;
                patternIds[p] = id;
                patterns.Add(p);
            }

            return id;
        }

        var ownAllowed = new List<int>[entries.Count];
        var ownBlocked = new List<int>[entries.Count];
        var ownRules = new List<Rule>[entries.Count];
        for (var i = 0; i < entries.Count; i++)
        {
            var e = entries[i];
            var at = $"$.policies[{i}]";
            ownAllowed[i] = DomainList(e.AllowedDomains, $"{at}.allowedDomains", PatternId, Fail);
            ownBlocked[i] = DomainList(e.BlockedDomains, $"{at}.blockedDomains", PatternId, Fail);
            foreach (var id in ownAllowed[i])
            {
                if (ownBlocked[i].Contains(id))
                {
                    throw Fail($"{at}", $"\"{patterns[id]}\" is both allowed and blocked in policy \"{e.Name}\"");
                }
            }

            ownRules[i] = CompileRules(e, at, Fail);
            foreach (var parent in e.Extends ?? [])
            {
                if (!byName.ContainsKey(parent))
                {
                    throw Fail($"{at}.extends", $"unknown policy \"{parent}\"");
                }
            }

            if (e.RateLimitScope is not (null or "agent" or "agent_domain"))
            {
                throw Fail($"{at}.rateLimitScope", $"must be \"agent\" or \"agent_domain\" (got \"{e.RateLimitScope}\")");
            }

            if (e.EgressBytesPerDay is < 0)
            {
                throw Fail($"{at}.egressBytesPerDay", "must not be negative");
            }

            if (e.MaxNewDomainsPerHour is <= 0)
            {
                throw Fail($"{at}.maxNewDomainsPerHour", "must be greater than 0");
            }

            ValidateLimits(e.RateLimits, $"{at}.rateLimits", Fail);
        }

        // extends is a DAG: lineage = self, then ancestors depth-first, each once; a cycle is an error.
        var lineages = new int[entries.Count][];
        for (var i = 0; i < entries.Count; i++)
        {
            var order = new List<int>();
            var state = new byte[entries.Count];
            Visit(i, new Stack<string>());
            lineages[i] = [.. order];

            void Visit(int n, Stack<string> trail)
            {
                if (state[n] == 2)
                {
                    return;
                }

                trail.Push(entries[n].Name!);
                if (state[n] == 1)
                {
                    throw Fail($"$.policies[{i}].extends", "cycle: " + string.Join(" -> ", trail.Reverse()));
                }

                state[n] = 1;
                order.Add(n);
                foreach (var parent in entries[n].Extends ?? [])
                {
                    Visit(byName[parent].Index, trail);
                }

                state[n] = 2;
                trail.Pop();
            }
        }

        var policies = new EffectivePolicy[entries.Count];
        var words = Math.Max(1, (entries.Count + 63) / 64);
        var blockedMask = new List<ulong>();
        var allowedMask = new List<ulong>();
        for (var i = 0; i < entries.Count; i++)
        {
            var lineage = lineages[i];
            var first = (Func<PolicyEntry, bool> has) => lineage.Select(n => entries[n]).FirstOrDefault(has);
            var timed = first(p => p.TimeRestrictions is not null);
            var limited = first(p => p.RateLimits is not null);
            var timedIndex = timed is null ? -1 : byName[timed.Name!].Index;
            policies[i] = new EffectivePolicy
            {
                Name = entries[i].Name!,
                Priority = entries[i].Priority,
                Index = i,
                Rules = [.. lineage.SelectMany(n => ownRules[n]).OrderBy(r => r.Priority)],
                Window = timed is null ? null : CompileWindow(timed.TimeRestrictions!, $"$.policies[{timedIndex}].timeRestrictions", Fail),
                Limits = limited?.RateLimits is { } rl ? new RateLimits(rl.RequestsPerMinute, rl.RequestsPerHour, rl.RequestsPerDay, rl.Burst) : null,
                PerDomainBuckets = limited?.RateLimitScope == "agent_domain",
                EgressBytesPerDay = first(p => p.EgressBytesPerDay is not null)?.EgressBytesPerDay,
                MaxNewDomainsPerHour = first(p => p.MaxNewDomainsPerHour is not null)?.MaxNewDomainsPerHour,
                Allowed = [.. lineage.SelectMany(n => ownAllowed[n]).Distinct().Select(id => patterns[id])],
                Blocked = [.. lineage.SelectMany(n => ownBlocked[n]).Distinct().Select(id => patterns[id])],
                Lineage = [.. lineage.Select(n => entries[n].Name!)],
            };
        }

        // Grants: their patterns join the automaton too.
        var grantsByPattern = new Dictionary<int, List<Grant>>();
        var agentsDoc = doc.Agents ?? [];
        var agentIds = new HashSet<string>(agentsDoc.Where(a => a.Id is not null).Select(a => a.Id!), StringComparer.Ordinal);
        var grantList = doc.Grants ?? [];
        for (var g = 0; g < grantList.Count; g++)
        {
            var grant = grantList[g];
            var at = $"$.grants[{g}]";
            if (string.IsNullOrEmpty(grant.Agent) || !agentIds.Contains(grant.Agent))
            {
                throw Fail($"{at}.agent", $"unknown agent \"{grant.Agent}\"");
            }

            if (grant.Expires is not { } expires)
            {
                throw Fail($"{at}.expires", "is required (an ISO-8601 time)");
            }

            var compiled = new Grant { Agent = grant.Agent, Expires = expires, AuditReason = "grant:" + (grant.Reason ?? $"#{g}") };
            foreach (var id in DomainList(grant.Domains, $"{at}.domains", PatternId, Fail))
            {
                if (!grantsByPattern.TryGetValue(id, out var list))
                {
                    grantsByPattern[id] = list = [];
                }

                list.Add(compiled);
            }
        }

        var rulesByPattern = IndexRules(ownRules, patterns, patternIds, out var ruleWords);
        foreach (var p in policies)
        {
            p.AllRulesIndexed = Array.TrueForAll(p.Rules, r => r.Indexed);
        }

        var blocked = new ulong[patterns.Count * words];
        var allowed = new ulong[patterns.Count * words];
        foreach (var p in policies)
        {
            foreach (var n in lineages[p.Index])
            {
                foreach (var id in ownBlocked[n])
                {
                    blocked[(id * words) + (p.Index >> 6)] |= 1UL << (p.Index & 63);
                }

                foreach (var id in ownAllowed[n])
                {
                    allowed[(id * words) + (p.Index >> 6)] |= 1UL << (p.Index & 63);
                }
            }
        }

        var agents = CompileAgents(agentsDoc, byName, policies, words, registry, Fail);
        var automaton = DomainAutomaton.Build(patterns);
        return new CompiledPolicy
        {
            IsObserve = observe,
            DefaultAllow = defaultAllow,
            Network = network,
            Automaton = automaton,
            Patterns = [.. patterns],
            RulesByPattern = rulesByPattern,
            RuleWords = ruleWords,
            Policies = policies,
            Agents = agents,
            Words = words,
            BlockedMask = blocked,
            AllowedMask = allowed,
            GrantsByPattern = [.. Enumerable.Range(0, patterns.Count).Select(id => grantsByPattern.TryGetValue(id, out var l) ? l.ToArray() : null)],
            MaxTunnelsPerAgent = maxTunnelsPerAgent,
            SourceSha256 = sha256,
            SourcePath = file,
            AgentsById = agents.ToDictionary(a => a.Id, StringComparer.Ordinal),
            AgentsByTokenHash = agents.Where(a => a.TokenHash is not null).GroupBy(a => Convert.ToHexStringLower(a.TokenHash!)).ToDictionary(g => g.Key, g => g.First()),
        };
    }

    /// <summary>The built-in policy when no file is configured: observe mode, one anonymous agent, everything allowed.</summary>
    public static CompiledPolicy Observe(AgentRegistry registry, int maxTunnelsPerAgent)
    {
        var anonymous = new AgentPlan
        {
            Id = "anonymous",
            Order = [],
            PolicyMask = [0],
            Buckets = [],
            Runtime = registry.Get("anonymous"),
        };
        return new CompiledPolicy
        {
            IsObserve = true,
            DefaultAllow = true,
            Network = NetworkGuard.Open,
            Automaton = DomainAutomaton.Build([]),
            Patterns = [],
            Policies = [],
            Agents = [anonymous],
            Words = 1,
            BlockedMask = [],
            AllowedMask = [],
            GrantsByPattern = [],
            MaxTunnelsPerAgent = int.MaxValue,
            SourceSha256 = string.Empty,
            Anonymous = anonymous,
            AgentsById = new Dictionary<string, AgentPlan> { ["anonymous"] = anonymous },
            AgentsByTokenHash = new Dictionary<string, AgentPlan>(),
        };
    }

    private static AgentPlan[] CompileAgents(List<AgentEntry> agentsDoc, Dictionary<string, (PolicyEntry Entry, int Index)> byName, EffectivePolicy[] policies, int words, AgentRegistry registry, Func<string, string, Exception> fail)
    {
        if (agentsDoc.Count > MaxAgents)
        {
            throw fail("$.agents", $"{agentsDoc.Count} agents; at most {MaxAgents}");
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        var agents = new AgentPlan[agentsDoc.Count];
        for (var i = 0; i < agentsDoc.Count; i++)
        {
            var a = agentsDoc[i];
            var at = $"$.agents[{i}]";
            if (string.IsNullOrWhiteSpace(a.Id) || a.Id.Contains(':', StringComparison.Ordinal))
            {
                throw fail($"{at}.id", "is required and must not contain ':'");
            }

            if (!seen.Add(a.Id))
            {
                throw fail($"{at}.id", $"duplicate agent \"{a.Id}\"");
            }

            if (a.TokenSha256 is not { Length: 64 } hex || !IsHex(hex))
            {
                throw fail($"{at}.tokenSha256", "must be 64 hex characters (chronoguard hash-token)");
            }

            var suspended = a.Status switch
            {
                null or "active" => false,
                "suspended" => true,
                _ => throw fail($"{at}.status", $"must be \"active\" or \"suspended\" (got \"{a.Status}\")"),
            };
            var names = a.Policies ?? [];
            if (names.Count > MaxPoliciesPerAgent)
            {
                throw fail($"{at}.policies", $"{names.Count} policies; at most {MaxPoliciesPerAgent}");
            }

            var order = new List<EffectivePolicy>();
            var mask = new ulong[words];
            for (var p = 0; p < names.Count; p++)
            {
                if (!byName.TryGetValue(names[p], out var found))
                {
                    throw fail($"{at}.policies[{p}]", $"unknown policy \"{names[p]}\"");
                }

                var policy = policies[found.Index];
                if (!order.Contains(policy))
                {
                    order.Add(policy);
                    mask[policy.Index >> 6] |= 1UL << (policy.Index & 63);
                }
            }

            var sorted = order.OrderBy(p => p.Priority).ToArray();
            var runtime = registry.Get(a.Id);
            agents[i] = new AgentPlan
            {
                Id = a.Id,
                TokenHash = Convert.FromHexString(hex),
                Suspended = suspended,
                Order = sorted,
                PolicyMask = mask,
                Buckets = [.. sorted.Select(p => p.Limits is null ? null : runtime.Buckets.GetOrAdd(p.Name, static _ => new BucketState()))],
                Runtime = runtime,
                EgressBytesPerDay = sorted.Where(p => p.EgressBytesPerDay is not null).Select(p => p.EgressBytesPerDay).Min(),
                Slot = i,
            };
        }

        return agents;
    }

    private static NetworkGuard CompileNetwork(NetworkEntry? n, Func<string, string, Exception> fail)
    {
        var cidrs = new List<IPNetwork>();
        var list = n?.AllowedCidrs ?? [];
        for (var i = 0; i < list.Count; i++)
        {
            if (!IPNetwork.TryParse(list[i], out var net))
            {
                throw fail($"$.network.allowedCidrs[{i}]", $"\"{list[i]}\" is not a CIDR range");
            }

            cidrs.Add(net);
        }

        var ports = n?.AllowedPorts ?? [80, 443];
        for (var i = 0; i < ports.Count; i++)
        {
            if (ports[i] is < 1 or > 65535)
            {
                throw fail($"$.network.allowedPorts[{i}]", $"{ports[i]} is not a port");
            }
        }

        return new NetworkGuard(n?.AllowPrivateDestinations ?? false, cidrs, ports, n?.RequireSniMatch ?? true);
    }

    private static List<int> DomainList(List<string>? raw, string path, Func<string, string, int> id, Func<string, string, Exception> fail)
    {
        var list = raw ?? [];
        if (list.Count > MaxDomainsPerList)
        {
            throw fail(path, $"{list.Count} domains; at most {MaxDomainsPerList}");
        }

        var ids = new List<int>(list.Count);
        for (var i = 0; i < list.Count; i++)
        {
            ids.Add(id(list[i], $"{path}[{i}]"));
        }

        return ids;
    }

    private static void ValidateLimits(RateLimitsEntry? r, string path, Func<string, string, Exception> fail)
    {
        if (r is null)
        {
            return;
        }

        foreach (var (name, value) in new[] { ("requestsPerMinute", r.RequestsPerMinute), ("requestsPerHour", r.RequestsPerHour), ("requestsPerDay", r.RequestsPerDay), ("burst", r.Burst) })
        {
            if (value is <= 0)
            {
                throw fail($"{path}.{name}", "must be greater than 0");
            }
        }
    }

    private static TimeWindow CompileWindow(TimeRestrictionsEntry t, string path, Func<string, string, Exception> fail)
    {
        TimeZoneInfo zone;
        try
        {
            zone = TimeZoneInfo.FindSystemTimeZoneById(t.Timezone ?? "UTC");
        }
        catch (Exception ex) when (ex is TimeZoneNotFoundException or InvalidTimeZoneException)
        {
            throw fail($"{path}.timezone", $"unknown IANA time zone \"{t.Timezone}\"");
        }

        var days = new List<DayOfWeek>();
        var rawDays = t.Days ?? ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
        for (var i = 0; i < rawDays.Count; i++)
        {
            days.Add(ParseDay(rawDays[i]) ?? throw fail($"{path}.days[{i}]", $"\"{rawDays[i]}\" is not a day (mon..sun)"));
        }

        var ranges = t.Ranges ?? [];
        if (ranges.Count > MaxTimeRanges)
        {
            throw fail($"{path}.ranges", $"{ranges.Count} ranges; at most {MaxTimeRanges}");
        }

        var compiled = new List<(int, int)>();
        for (var i = 0; i < ranges.Count; i++)
        {
            var start = ParseClock(ranges[i].Start) ?? throw fail($"{path}.ranges[{i}].start", $"\"{ranges[i].Start}\" is not HH:mm");
            var end = ParseClock(ranges[i].End) ?? throw fail($"{path}.ranges[{i}].end", $"\"{ranges[i].End}\" is not HH:mm (24:00 allowed)");
            compiled.Add((start, end));
        }

        if (compiled.Count == 0)
        {
            compiled.Add((0, 0));
        }

        return TimeWindow.Create(zone, days, compiled);
    }

    internal static DayOfWeek? ParseDay(string s) => s.ToLowerInvariant() switch
    {
        "sun" or "sunday" => DayOfWeek.Sunday,
        "mon" or "monday" => DayOfWeek.Monday,
        "tue" or "tuesday" => DayOfWeek.Tuesday,
        "wed" or "wednesday" => DayOfWeek.Wednesday,
        "thu" or "thursday" => DayOfWeek.Thursday,
        "fri" or "friday" => DayOfWeek.Friday,
        "sat" or "saturday" => DayOfWeek.Saturday,
        _ => null,
    };

    private static int? ParseClock(string? s)
    {
        if (s is null || s.Length != 5 || s[2] != ':'
            || !int.TryParse(s.AsSpan(0, 2), NumberStyles.None, CultureInfo.InvariantCulture, out var h)
            || !int.TryParse(s.AsSpan(3, 2), NumberStyles.None, CultureInfo.InvariantCulture, out var m)
            || m > 59 || h > 24 || (h == 24 && m != 0))
        {
            return null;
        }

        return (h * 60) + m;
    }

    private static bool IsHex(string s)
    {
        foreach (var c in s)
        {
            if (!char.IsAsciiHexDigit(c))
            {
                return false;
            }
        }

        return true;
    }
}
