using System.Numerics;

namespace ChronoGuard.Policy;

/// <summary>
/// Compiles a <see cref="PolicyDocument"/> in stages: validate (every value, SPEC §4's limits) →
/// lineage DAG (extends checked acyclic) → effective policies → grants → masks → agents. Only the
/// first two stages (and the size caps) can refuse the input; they throw <see cref="PolicyProblem"/>,
/// which becomes one <see cref="PolicyLoadException"/> line naming the file here.
/// Every stage is linear in the size of the file (a 20,000-deep <c>extends</c> chain compiles in
/// milliseconds): lineages are built only for the policies agents name, and the per-pattern masks are
/// filled by propagating "which named policies reach me" once along the DAG, sharing bit sets until
/// one needs to differ.
/// </summary>
internal static partial class PolicyCompiler
{
    public const int MaxAgents = 1000;
    public const int MaxPoliciesPerAgent = 50;
    public const int MaxRulesPerPolicy = 100;
    public const int MaxConditionsPerRule = 20;
    public const int MaxTimeRanges = 10;
    public const int MaxDomainsPerList = 10_000;

    /// <summary>
    /// Bounds the patterns one host can match: the decision's fixed stack buffer. Without ports a host
    /// of at most 127 labels matches at most 128 (a wildcard per label and one exact name), so only a
    /// name listed with about a hundred ports or ranges, where one range would do, reaches it.
    /// </summary>
    public const int MaxMatchesPerHost = 128;

    /// <summary>Bounds the merged rule lists and lineages of the policies agents name (their sum; each is kept per policy).</summary>
    public const int MaxInheritedEntries = 2_000_000;

    /// <summary>Bounds each per-pattern mask: allowed, blocked, inspected (patterns × ⌈named policies / 64⌉ words each).</summary>
    public const long MaxMaskWords = 16L * 1024 * 1024;

    /// <param name="inspectionConfigured">Inspection (a CA) is configured; without it a policy naming <c>inspect</c> or <c>credentials</c> is refused.</param>
    /// <param name="approvalsConfigured">The admin API is on (SPEC §9); without it <c>ask</c> is refused.</param>
    public static CompiledPolicy Compile(PolicyDocument doc, string file, string sha256, AgentRegistry registry, int maxTunnelsPerAgent, bool inspectionConfigured = false, bool approvalsConfigured = false)
    {
        try
        {
            var input = Validate(doc, inspectionConfigured, approvalsConfigured);
            var dag = LineageDag.Build(input.Parents, Array.ConvertAll(input.Entries, e => e.Name!));
            var policies = EffectivePolicies(input, dag);
            var rulesByPattern = IndexRules(InheritedRules(input, policies), input.Patterns, input.PatternIds, out var ruleWords);
            foreach (var p in policies)
            {
                p.AllRulesIndexed = Array.TrueForAll(p.Rules, r => r.Indexed);
            }

            var grants = GrantsByPattern(input);
            var masks = Masks(input, dag, policies);
            var agents = Agents(input, policies, masks.Words, registry);
            string[] patterns = [.. input.Patterns];
            var credentials = Credentials(doc.Credentials, inspectionConfigured, agents, patterns, masks.Inspect, masks.Words, file);
            var automaton = DomainAutomaton.Build(input.Patterns);
            if (automaton.MaxMatches > MaxMatchesPerHost)
            {
                throw new PolicyProblem("$.policies", $"one host name can match {automaton.MaxMatches} patterns (a name listed with many ports or ranges); at most {MaxMatchesPerHost}: merge its ports into ranges");
            }

            return new CompiledPolicy
            {
                IsObserve = input.Observe,
                DefaultAllow = input.DefaultAllow,
                Network = input.Network,
                Automaton = automaton,
                Patterns = patterns,
                Credentials = credentials.Credentials,
                CredentialDomains = credentials.Automaton,
                CredentialsByDomain = credentials.ByPattern,
                PresetsByPattern = PresetsByPattern(input),
                PortScoped = input.Patterns.ConvertAll(p => DomainNames.SplitPorts(p, out _, out _, out _)).ToArray(),
                RulesByPattern = rulesByPattern,
                RuleWords = ruleWords,
                Policies = policies,
                DeclaredPolicies = Array.ConvertAll(input.Entries, e => e.Name!),
                Agents = agents,
                Words = masks.Words,
                BlockedMask = masks.Blocked,
                AllowedMask = masks.Allowed,
                InspectMask = masks.Inspect,
                AnyInspect = Array.Exists(input.OwnInspect, l => l.Length > 0),
                BlockedBy = masks.BlockedBy,
                GrantsByPattern = grants,
                MaxTunnelsPerAgent = maxTunnelsPerAgent,
                SourceSha256 = sha256,
                SourcePath = file,
                AgentsById = agents.ToDictionary(a => a.Id, StringComparer.Ordinal),
                AgentsByTokenHash = agents.Where(a => a.TokenHash is not null).GroupBy(a => Convert.ToHexStringLower(a.TokenHash!)).ToDictionary(g => g.Key, g => g.First()),
            };
        }
        catch (PolicyProblem p)
        {
            throw new PolicyLoadException($"{file}: {p.Where}: {p.Message}", p);
        }
    }

    /// <summary>
    /// Stage 3: the policies agents name (in the order first named), each with its lineage merged:
    /// rules by ascending rule priority (stable, so lineage order breaks ties), and the nearest time
    /// window, limits, egress budget and fan-out quota along the lineage.
    /// </summary>
    private static EffectivePolicy[] EffectivePolicies(PolicyInput input, LineageDag dag)
    {
        var effectiveIndex = new int[input.Entries.Length];
        Array.Fill(effectiveIndex, -1);
        var named = new List<int>();
        foreach (var agent in input.Agents)
        {
            foreach (var d in agent.Policies)
            {
                if (effectiveIndex[d] < 0)
                {
                    effectiveIndex[d] = named.Count;
                    named.Add(d);
                }
            }
        }

        var seen = new bool[input.Entries.Length];
        long inherited = 0;
        var policies = new EffectivePolicy[named.Count];
        for (var u = 0; u < named.Count; u++)
        {
            var d = named[u];
            var lineage = dag.Lineage(d, seen);
            var rules = new List<Rule>();
            var positions = new Dictionary<int, int>(lineage.Length);
            for (var i = 0; i < lineage.Length; i++)
            {
                rules.AddRange(input.OwnRules[lineage[i]]);
                positions[lineage[i]] = i;
            }

            inherited += lineage.Length + rules.Count;
            if (inherited > MaxInheritedEntries)
            {
                throw new PolicyProblem($"$.policies[{d}].extends", $"the policies agents name inherit more than {MaxInheritedEntries} policies and rules in total through extends");
            }

            var entry = input.Entries[d];
            var limited = Nearest(lineage, q => input.Limits[q] is not null);
            policies[u] = new EffectivePolicy
            {
                Name = entry.Name!,
                Priority = entry.Priority,
                Index = u,
                DeclaredIndex = d,
                Rules = [.. rules.OrderBy(r => r.Priority)],
                Window = Nearest(lineage, q => input.Windows[q] is not null) is var w and >= 0 ? input.Windows[w] : null,
                Limits = limited >= 0 ? input.Limits[limited] : null,
                PerDomainBuckets = limited >= 0 && input.Entries[limited].RateLimitScope == "agent_domain",
                EgressBytesPerDay = Nearest(lineage, q => input.Entries[q].EgressBytesPerDay is not null) is var e and >= 0 ? input.Entries[e].EgressBytesPerDay : null,
                MaxNewDomainsPerHour = Nearest(lineage, q => input.Entries[q].MaxNewDomainsPerHour is not null) is var f and >= 0 ? input.Entries[f].MaxNewDomainsPerHour : null,
                DnsTypes = DnsTypes(lineage, input.Entries),
                AsksUnlisted = Nearest(lineage, q => input.Entries[q].Unlisted is not null) >= 0,
                Lineage = Array.ConvertAll(lineage, q => input.Entries[q].Name!),
                LineagePosition = positions,
            };
        }

        return policies;
    }

    /// <summary>A policy's own and inherited <c>dnsTypes</c> (a list, merged like the domain lists).</summary>
    private static ushort[] DnsTypes(int[] lineage, PolicyEntry[] entries)
    {
        var types = new SortedSet<ushort>();
        foreach (var q in lineage)
        {
            foreach (var name in entries[q].DnsTypes ?? [])
            {
                if (DnsTypeNames.TryParse(name, out var type))
                {
                    types.Add(type); // validated before: every name parses
                }
            }
        }

        return [.. types];
    }

    private static int Nearest(int[] lineage, Func<int, bool> has)
    {
        foreach (var q in lineage)
        {
            if (has(q))
            {
                return q;
            }
        }

        return -1;
    }

    /// <summary>The own rule lists of every policy some named policy inherits (each list once): what the rule index covers.</summary>
    private static List<Rule>[] InheritedRules(PolicyInput input, EffectivePolicy[] policies)
    {
        var included = new bool[input.Entries.Length];
        var lists = new List<List<Rule>>();
        foreach (var p in policies)
        {
            foreach (var d in p.LineagePosition.Keys)
            {
                if (!included[d])
                {
                    included[d] = true;
                    lists.Add(input.OwnRules[d]);
                }
            }
        }

        return [.. lists];
    }

    /// <summary>Per pattern, the (declared policy, preset) pairs that allow it through <c>presets</c>; read only by explain.</summary>
    private static (int Policy, string Preset)[]?[] PresetsByPattern(PolicyInput input)
    {
        var byPattern = new (int, string)[]?[input.Patterns.Count];
        foreach (var (id, sources) in input.PresetPatterns)
        {
            byPattern[id] = [.. sources];
        }

        return byPattern;
    }

    /// <summary>Stage 4: per pattern, the grants that name it (null when none).</summary>
    private static Grant[]?[] GrantsByPattern(PolicyInput input)
    {
        var byPattern = new List<Grant>?[input.Patterns.Count];
        foreach (var (agent, expires, reason, patterns) in input.Grants)
        {
            var grant = new Grant { Agent = agent, Expires = expires, AuditReason = reason };
            foreach (var id in patterns)
            {
                (byPattern[id] ??= []).Add(grant);
            }
        }

        return Array.ConvertAll(byPattern, l => l?.ToArray());
    }

    /// <summary>
    /// Stage 5: bit u of a pattern's row when named policy u's merged allowed (blocked) list holds it.
    /// "Which named policies reach this one" is propagated once from extenders to the policies they
    /// extend (<see cref="LineageDag.ExtendersFirst"/>), so every policy and edge is visited once;
    /// a bit set passed up unchanged is shared, and copied only when a second one is merged in.
    /// </summary>
    private static (int Words, ulong[] Allowed, ulong[] Blocked, ulong[] Inspect, int[]?[] BlockedBy) Masks(PolicyInput input, LineageDag dag, EffectivePolicy[] policies)
    {
        var words = Math.Max(1, (policies.Length + 63) / 64);
        var patterns = input.Patterns.Count;
        if ((long)patterns * words > MaxMaskWords)
        {
            throw new PolicyProblem("$.agents", $"{patterns} domain patterns across {policies.Length} policies named by agents need more than {MaxMaskWords} mask words; name fewer distinct policies or merge them");
        }

        var allowed = new ulong[patterns * words];
        var blocked = new ulong[patterns * words];
        // Most files inspect nothing: no third mask for them (the decision reads it only when AnyInspect).
        var inspect = Array.Exists(input.OwnInspect, l => l.Length > 0) ? new ulong[patterns * words] : [];
        var reach = new ulong[]?[input.Entries.Length];
        var owned = new bool[input.Entries.Length];
        foreach (var p in policies)
        {
            reach[p.DeclaredIndex] = new ulong[words];
            reach[p.DeclaredIndex]![p.Index >> 6] |= 1UL << (p.Index & 63);
            owned[p.DeclaredIndex] = true;
        }

        var blockedBy = new List<int>?[patterns];
        foreach (var c in dag.ExtendersFirst)
        {
            foreach (var id in input.OwnBlocked[c])
            {
                (blockedBy[id] ??= []).Add(c);
            }

            if (reach[c] is not { } r)
            {
                continue;
            }

            foreach (var id in input.OwnAllowed[c])
            {
                Or(allowed.AsSpan(id * words, words), r);
            }

            foreach (var id in input.OwnBlocked[c])
            {
                Or(blocked.AsSpan(id * words, words), r);
            }

            foreach (var id in input.OwnInspect[c])
            {
                Or(inspect.AsSpan(id * words, words), r);
            }

            foreach (var p in dag.Parents(c))
            {
                if (reach[p] is null)
                {
                    reach[p] = r;
                    continue;
                }

                if (!owned[p])
                {
                    reach[p] = (ulong[])reach[p]!.Clone();
                    owned[p] = true;
                }

                Or(reach[p], r);
            }

            reach[c] = null;
        }

        return (words, allowed, blocked, inspect, Array.ConvertAll(blockedBy, l => l?.ToArray()));
    }

    private static void Or(Span<ulong> into, ReadOnlySpan<ulong> bits)
    {
        for (var i = 0; i < into.Length; i++)
        {
            into[i] |= bits[i];
        }
    }

    /// <summary>Stage 6: agents with their named policies by ascending priority and their runtime state.</summary>
    private static AgentPlan[] Agents(PolicyInput input, EffectivePolicy[] policies, int words, AgentRegistry registry)
    {
        var byDeclared = new Dictionary<int, EffectivePolicy>();
        foreach (var p in policies)
        {
            byDeclared[p.DeclaredIndex] = p;
        }

        var agents = new AgentPlan[input.Agents.Length];
        for (var i = 0; i < agents.Length; i++)
        {
            var (id, tokenHash, suspended, named) = input.Agents[i];
            var order = Array.ConvertAll(named, d => byDeclared[d]).OrderBy(p => p.Priority).ToArray();
            var mask = new ulong[words];
            foreach (var p in order)
            {
                mask[p.Index >> 6] |= 1UL << (p.Index & 63);
            }

            var runtime = registry.Get(id);
            agents[i] = new AgentPlan
            {
                Id = id,
                TokenHash = tokenHash,
                Suspended = suspended,
                Order = order,
                PolicyMask = mask,
                Buckets = Array.ConvertAll(order, p => p.Limits is null ? null : runtime.Buckets.GetOrAdd(p.Name, static _ => new BucketState())),
                DomainBuckets = Array.ConvertAll(order, p => p.Limits is null || !p.PerDomainBuckets ? null : runtime.DomainBuckets.GetOrAdd(p.Name, static _ => new DomainBuckets())),
                Runtime = runtime,
                EgressBytesPerDay = order.Where(p => p.EgressBytesPerDay is not null).Select(p => p.EgressBytesPerDay).Min(),
                AsksUnlisted = input.DefaultAsk || order.Any(p => p.AsksUnlisted),
                Slot = i,
            };
        }

        return agents;
    }

    /// <summary>
    /// The built-in policy when no file is configured: observe mode, one anonymous agent, every domain
    /// allowed, and the network guard of a file without a <c>network</c> section. Observe mode forwards
    /// whatever the guard says, so only the records change: they say what the first enforce policy
    /// would refuse (a private address, a port outside 80 and 443, a ClientHello naming another host).
    /// </summary>
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
            Network = NetworkGuard.Default,
            Automaton = DomainAutomaton.Build([]),
            Patterns = [],
            PortScoped = [],
            Policies = [],
            DeclaredPolicies = [],
            Agents = [anonymous],
            Words = 1,
            BlockedMask = [],
            AllowedMask = [],
            InspectMask = [],
            BlockedBy = [],
            GrantsByPattern = [],
            MaxTunnelsPerAgent = maxTunnelsPerAgent,
            SourceSha256 = string.Empty,
            Anonymous = anonymous,
            AgentsById = new Dictionary<string, AgentPlan> { ["anonymous"] = anonymous },
            AgentsByTokenHash = new Dictionary<string, AgentPlan>(),
        };
    }
}
