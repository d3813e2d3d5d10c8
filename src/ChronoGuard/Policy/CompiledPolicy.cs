using System.Net;

namespace ChronoGuard.Policy;

/// <summary>
/// An immutable, compiled policy: published with <c>Volatile.Write</c> by <see cref="PolicyEngine"/>
/// and read once per request. <see cref="Decide"/> applies SPEC §4's precedence with no locks and no
/// allocation; only the per-agent runtime counters it touches change, through Interlocked.
/// </summary>
internal sealed partial class CompiledPolicy
{
    private const int MaxMatches = 128;

    public required bool IsObserve { get; init; }

    /// <summary>Per pattern id, the ordinals of the rules whose domain condition it indexes (see PolicyCompiler.IndexRules).</summary>
    public int[]?[] RulesByPattern { get; init; } = [];

    /// <summary>Words of the rule candidate bit set; 0 when rules are not indexed.</summary>
    public int RuleWords { get; init; }

    public required bool DefaultAllow { get; init; }

    public required NetworkGuard Network { get; init; }

    public required DomainAutomaton Automaton { get; init; }

    public required string[] Patterns { get; init; }

    public required EffectivePolicy[] Policies { get; init; }

    public required AgentPlan[] Agents { get; init; }

    /// <summary>ulong words per pattern in the masks below.</summary>
    public required int Words { get; init; }

    /// <summary>Per pattern: bit i when policy i's merged blocked list contains it.</summary>
    public required ulong[] BlockedMask { get; init; }

    /// <summary>Per pattern: bit i when policy i's merged allowed list contains it.</summary>
    public required ulong[] AllowedMask { get; init; }

    /// <summary>Per pattern: the grants that name it (null when none).</summary>
    public required Grant[]?[] GrantsByPattern { get; init; }

    public required int MaxTunnelsPerAgent { get; init; }

    /// <summary>SHA-256 (hex) of the policy file, or empty for the built-in observe policy.</summary>
    public required string SourceSha256 { get; init; }

    public string? SourcePath { get; init; }

    /// <summary>The agent used when there is no policy file (observe mode): no credentials needed.</summary>
    public AgentPlan? Anonymous { get; init; }

    /// <summary>
    /// SPEC §4 precedence after authentication, for everything that does not need the resolved
    /// address (an IP-literal host is checked here; names are checked again by <see cref="CheckResolved"/>).
    /// </summary>
    public DecisionResult Decide(AgentPlan agent, in RequestFacts facts, DateTimeOffset now, long nowTicks, IDecisionTrace? trace = null) =>
        Evaluate(agent, facts, now, nowTicks, consume: true, trace);

    /// <summary>The network guard on the address about to be dialed; Allow, or BLOCK with the reason.</summary>
    public DecisionResult CheckResolved(IPAddress address, IDecisionTrace? trace = null)
    {
        var reason = Network.Check(address);
        trace?.Step(reason is null ? $"network guard: {address} may be dialed" : $"network guard: {address} refused ({reason})");
        return reason is null ? DecisionResult.Allow(Reasons.Allowed) : DecisionResult.Refuse(Decision.Block, 403, reason);
    }

    /// <summary>Whether an open tunnel may go on under this policy now; consumes nothing.</summary>
    public TunnelVerdict Recheck(AgentPlan agent, ReadOnlySpan<byte> host, int port, DateTimeOffset now)
    {
        if (agent.Suspended)
        {
            return TunnelVerdict.PolicyRevoked;
        }

        var facts = new RequestFacts(host, port, "CONNECT"u8, default, default, null, isConnect: true);
        var result = Evaluate(agent, facts, now, 0, consume: false, trace: null);
        return result.Decision switch
        {
            Decision.Allow or Decision.RateLimited => TunnelVerdict.Keep,
            Decision.TimeRestricted => TunnelVerdict.WindowClosed,
            _ => TunnelVerdict.PolicyRevoked,
        };
    }

    private DecisionResult Evaluate(AgentPlan agent, in RequestFacts facts, DateTimeOffset now, long nowTicks, bool consume, IDecisionTrace? trace)
    {
        // Network guard on what is known before DNS: the port, and the host if it is an IP literal.
        if (!Network.PortAllowed(facts.Port))
        {
            trace?.Step($"network: port {facts.Port} is not in allowedPorts");
            return DecisionResult.Refuse(Decision.Block, 403, Reasons.PortNotAllowed);
        }

        if (TryParseLiteral(facts.Host, out var literal) && Network.Check(literal!) is { } guardReason)
        {
            trace?.Step($"network: {literal} refused ({guardReason})");
            return DecisionResult.Refuse(Decision.Block, 403, guardReason);
        }

        // Budgets: concurrent tunnels (the proxy takes the slot once allowed) and egress bytes today.
        if (consume && facts.IsConnect && agent.Runtime.OpenTunnels >= MaxTunnelsPerAgent)
        {
            trace?.Step($"budget: {agent.Runtime.OpenTunnels} tunnels open, limit {MaxTunnelsPerAgent}");
            return DecisionResult.Refuse(Decision.RateLimited, 429, Reasons.TunnelLimit, retryAfter: 1);
        }

        if (agent.EgressBytesPerDay is { } budget && agent.Runtime.EgressToday(Day(now)) >= budget)
        {
            trace?.Step($"budget: egress today {agent.Runtime.EgressToday(Day(now))} >= {budget} bytes");
            return DecisionResult.Refuse(Decision.RateLimited, 429, Reasons.EgressBudget, retryAfter: SecondsToNextDay(now));
        }

        Span<int> matches = stackalloc int[MaxMatches];
        var matchCount = Automaton.Match(facts.Host, matches);
        matches = matches[..matchCount];
        trace?.Step(matchCount == 0 ? "domain: no pattern matches" : "domain: matches " + string.Join(", ", matches.ToArray().Select(m => Patterns[m])));

        // An unexpired grant for this agent and domain allows it outright.
        foreach (var m in matches)
        {
            var grants = GrantsByPattern[m];
            if (grants is null)
            {
                continue;
            }

            foreach (var g in grants)
            {
                if (g.Expires > now && string.Equals(g.Agent, agent.Id, StringComparison.Ordinal))
                {
                    trace?.Step($"grant: {Patterns[m]} until {g.Expires:O} ({g.AuditReason})");
                    return DecisionResult.Allow(g.AuditReason);
                }

                trace?.Step($"grant: {Patterns[m]} for {g.Agent} does not apply (agent or expiry {g.Expires:O})");
            }
        }

        var blocked = false;
        string? blockedBy = null;
        foreach (var m in matches)
        {
            if (Intersects(BlockedMask.AsSpan(m * Words, Words), agent.PolicyMask))
            {
                blocked = true;
                blockedBy = Patterns[m];
                break;
            }
        }

        // Rules whose domain condition the automaton indexed are candidates only when one of their
        // patterns matched this host; the rest are evaluated as written.
        Span<ulong> candidates = stackalloc ulong[RuleWords];
        candidates.Clear();
        var anyCandidate = false;
        foreach (var m in matches)
        {
            if (m < RulesByPattern.Length && RulesByPattern[m] is { } ruleIds)
            {
                anyCandidate = true;
                foreach (var o in ruleIds)
                {
                    candidates[o >> 6] |= 1UL << (o & 63);
                }
            }
        }

        var loggedRule = (string?)null;
        var localMinute = -1;
        foreach (var policy in agent.Order)
        {
            trace?.Step($"policy {policy.Name} (priority {policy.Priority})");
            foreach (var rule in anyCandidate || !policy.AllRulesIndexed ? policy.Rules : [])
            {
                if (rule.Indexed && (candidates[rule.Ordinal >> 6] & (1UL << (rule.Ordinal & 63))) == 0)
                {
                    continue;
                }

                if (localMinute < 0)
                {
                    localMinute = LocalMinuteOfWeek(policy, now);
                }

                if (!rule.Matches(facts, localMinute))
                {
                    continue;
                }

                trace?.Step($"  rule {rule.Name} ({rule.Origin}) matches: {rule.Action}");
                switch (rule.Action)
                {
                    case RuleAction.Deny:
                        return DecisionResult.Refuse(Decision.PolicyViolation, 403, Reasons.RuleDeny, policy.Name, rule.Name);
                    case RuleAction.Allow:
                        return DecisionResult.Allow(Reasons.RuleAllow, policy.Name, rule.Name);
                    case RuleAction.Log:
                        loggedRule ??= rule.Name;
                        break;
                    case RuleAction.RateLimit when policy.Limits is { } limits && consume:
                        if (!TakeToken(agent, policy, limits, facts.Host, nowTicks, out var ruleWait))
                        {
                            trace?.Step($"  bucket empty: retry after {ruleWait} s");
                            return DecisionResult.Refuse(Decision.RateLimited, 429, Reasons.RateLimit, policy.Name, rule.Name, ruleWait);
                        }

                        break;
                }
            }

            if (blocked)
            {
                trace?.Step($"  {blockedBy} is blocked in this agent's policies (blocked wins)");
                return DecisionResult.Refuse(Decision.Block, 403, Reasons.DomainBlocked, policy.Name, loggedRule);
            }

            var allowed = false;
            foreach (var m in matches)
            {
                if ((AllowedMask[(m * Words) + (policy.Index >> 6)] & (1UL << (policy.Index & 63))) != 0)
                {
                    allowed = true;
                    break;
                }
            }

            if (!allowed)
            {
                trace?.Step("  domain not in this policy's allowed list");
                continue;
            }

            if (policy.Window is { } window && !window.IsOpen(now))
            {
                var opens = window.NextOpening(now);
                trace?.Step($"  outside the time window ({window.Zone.Id}); opens {opens:O}");
                var result = DecisionResult.Refuse(Decision.TimeRestricted, 403, Reasons.OutsideWindow, policy.Name, loggedRule,
                    opens is { } o ? Math.Max(1, (long)Math.Ceiling((o - now).TotalSeconds)) : -1);
                result.RetryAt = opens;
                return result;
            }

            if (policy.Window is { } open)
            {
                trace?.Step($"  time window ({open.Zone.Id}): open");
            }

            if (consume && policy.Limits is { } policyLimits && !TakeToken(agent, policy, policyLimits, facts.Host, nowTicks, out var wait))
            {
                trace?.Step($"  bucket empty: retry after {wait} s");
                return DecisionResult.Refuse(Decision.RateLimited, 429, Reasons.RateLimit, policy.Name, loggedRule, wait);
            }

            if (consume && policy.MaxNewDomainsPerHour is { } quota && !agent.Runtime.TryNoteDomain(Hour(now), DomainHash.Of(facts.Host), quota))
            {
                trace?.Step($"  {quota} new domains this hour already");
                return DecisionResult.Refuse(Decision.RateLimited, 429, Reasons.FanOut, policy.Name, loggedRule, SecondsToNextHour(now));
            }

            trace?.Step("  allowed");
            return DecisionResult.Allow(Reasons.Allowed, policy.Name, loggedRule);
        }

        if (blocked)
        {
            trace?.Step($"{blockedBy} is blocked (blocked wins)");
            return DecisionResult.Refuse(Decision.Block, 403, Reasons.DomainBlocked, null, loggedRule);
        }

        trace?.Step($"nothing matched: defaultAction {(DefaultAllow ? "allow" : "deny")}");
        return DefaultAllow
            ? DecisionResult.Allow(Reasons.DefaultAllow, null, loggedRule)
            : DecisionResult.Refuse(Decision.Deny, 403, Reasons.DefaultDeny, null, loggedRule);
    }

    private static bool TakeToken(AgentPlan agent, EffectivePolicy policy, RateLimits limits, ReadOnlySpan<byte> host, long nowTicks, out long wait)
    {
        BucketState? state;
        if (policy.PerDomainBuckets)
        {
            state = agent.Runtime.DomainBuckets.GetOrAdd((policy.Name, DomainHash.Of(host)), static _ => new BucketState());
        }
        else
        {
            state = agent.Buckets[Array.IndexOf(agent.Order, policy)]!;
        }

        return limits.TryTake(state, nowTicks, out wait);
    }

    private static int LocalMinuteOfWeek(EffectivePolicy policy, DateTimeOffset now)
    {
        if (policy.Window is { } w)
        {
            return w.MinuteOfWeek(now);
        }

        var u = now.UtcDateTime;
        return ((int)u.DayOfWeek * 1440) + (u.Hour * 60) + u.Minute;
    }

    private static bool Intersects(ReadOnlySpan<ulong> a, ReadOnlySpan<ulong> b)
    {
        for (var i = 0; i < a.Length; i++)
        {
            if ((a[i] & b[i]) != 0)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>An IP-literal host (IPv6 without brackets, as the parser gives it); names cost one scan.</summary>
    internal static bool TryParseLiteral(ReadOnlySpan<byte> host, out IPAddress? address)
    {
        address = null;
        if (host.IsEmpty || host.Length > 45 || host.IndexOfAnyExcept(LiteralBytes) >= 0)
        {
            return false;
        }

        Span<char> chars = stackalloc char[host.Length];
        for (var i = 0; i < host.Length; i++)
        {
            chars[i] = (char)host[i];
        }

        return IPAddress.TryParse(chars, out address);
    }

    private static readonly System.Buffers.SearchValues<byte> LiteralBytes = System.Buffers.SearchValues.Create("0123456789abcdefABCDEF.:"u8);

    internal static long Day(DateTimeOffset now) => now.UtcTicks / TimeSpan.TicksPerDay;

    internal static long Hour(DateTimeOffset now) => now.UtcTicks / TimeSpan.TicksPerHour;

    private static long SecondsToNextDay(DateTimeOffset now) => Math.Max(1, (TimeSpan.TicksPerDay - (now.UtcTicks % TimeSpan.TicksPerDay)) / TimeSpan.TicksPerSecond);

    private static long SecondsToNextHour(DateTimeOffset now) => Math.Max(1, (TimeSpan.TicksPerHour - (now.UtcTicks % TimeSpan.TicksPerHour)) / TimeSpan.TicksPerSecond);
}
