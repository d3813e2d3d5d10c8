using System.Net;
using System.Runtime.CompilerServices;

namespace ChronoGuard.Policy;

/// <summary>
/// An immutable, compiled policy: published with <c>Volatile.Write</c> by <see cref="PolicyEngine"/>
/// and read once per request. <see cref="Decide"/> applies SPEC §4's precedence with no locks and no
/// allocation; only the per-agent runtime counters it touches change, through Interlocked.
/// </summary>
internal sealed partial class CompiledPolicy
{
    public required bool IsObserve { get; init; }

    /// <summary>Per pattern id, the ordinals of the rules whose domain condition it indexes (see PolicyCompiler.IndexRules).</summary>
    public int[]?[] RulesByPattern { get; init; } = [];

    /// <summary>Words of the rule candidate bit set; 0 when rules are not indexed.</summary>
    public int RuleWords { get; init; }

    public required bool DefaultAllow { get; init; }

    public required NetworkGuard Network { get; init; }

    public required DomainAutomaton Automaton { get; init; }

    public required string[] Patterns { get; init; }

    /// <summary>The policy's <c>credentials</c> (SPEC §7); empty when none, and then nothing looks for placeholders.</summary>
    public CompiledCredential[] Credentials { get; init; } = [];

    /// <summary>The credentials' domain patterns, matched only when <see cref="Credentials"/> is not empty.</summary>
    public DomainAutomaton CredentialDomains { get; init; } = DomainAutomaton.Build([]);

    /// <summary>Per pattern of <see cref="CredentialDomains"/>: the credentials that name it.</summary>
    public CompiledCredential[]?[] CredentialsByDomain { get; init; } = [];

    /// <summary>Per pattern: the (declared policy, preset) pairs whose <c>presets</c> brought it in (null when none); explain names them.</summary>
    public (int Policy, string Preset)[]?[] PresetsByPattern { get; init; } = [];

    /// <summary>Per pattern: it names a port or range (<c>github.com:22</c>), so an allowed one admits its ports at the port step.</summary>
    public required bool[] PortScoped { get; init; }

    /// <summary>The policies agents name, merged with what they inherit (the others are never evaluated).</summary>
    public required EffectivePolicy[] Policies { get; init; }

    /// <summary>Every policy of the file, by its position in <c>$.policies</c>.</summary>
    public required string[] DeclaredPolicies { get; init; }

    public required AgentPlan[] Agents { get; init; }

    /// <summary>ulong words per pattern in the masks below.</summary>
    public required int Words { get; init; }

    /// <summary>Per pattern: bit i when <see cref="Policies"/>[i]'s merged blocked list contains it.</summary>
    public required ulong[] BlockedMask { get; init; }

    /// <summary>Per pattern: bit i when <see cref="Policies"/>[i]'s merged allowed list contains it.</summary>
    public required ulong[] AllowedMask { get; init; }

    /// <summary>
    /// Per pattern: bit i when <see cref="Policies"/>[i]'s merged <c>inspect</c> list contains it (SPEC §7);
    /// empty when no policy inspects anything.
    /// </summary>
    public ulong[] InspectMask { get; init; } = [];

    /// <summary>Some policy names <c>inspect</c>: the decision looks at <see cref="InspectMask"/> only then.</summary>
    public bool AnyInspect { get; init; }

    /// <summary>Per pattern: the declared policies whose own <c>blockedDomains</c> list it (null when none), to name who blocks.</summary>
    public required int[]?[] BlockedBy { get; init; }

    /// <summary>Per pattern: the grants that name it (null when none).</summary>
    public required Grant[]?[] GrantsByPattern { get; init; }

    public required int MaxTunnelsPerAgent { get; init; }

    /// <summary>SHA-256 (hex) of the policy file, or empty for the built-in observe policy.</summary>
    public required string SourceSha256 { get; init; }

    public string? SourcePath { get; init; }

    /// <summary>
    /// The engine's runtime grants (SPEC §9), consulted only where <c>defaultAction</c> would refuse;
    /// set by <see cref="PolicyEngine"/> before the policy is published, null for a policy no engine holds.
    /// </summary>
    public RuntimeGrantTable? RuntimeGrants { get; set; }

    /// <summary>The agent used when there is no policy file (observe mode): no credentials needed.</summary>
    public AgentPlan? Anonymous { get; init; }

    /// <summary>
    /// SPEC §4 precedence after authentication, for everything that does not need the resolved
    /// address (an IP-literal host is checked here; names are checked again by <see cref="CheckResolved"/>).
    /// </summary>
    public DecisionResult Decide(AgentPlan agent, in RequestFacts facts, DateTimeOffset now, long nowTicks, IDecisionTrace? trace = null)
    {
        var result = Evaluate(agent, facts, now, nowTicks, consume: true, trace, out var inspect);
        result.Inspect = inspect & result.IsAllow;
        return result;
    }

    /// <summary>The network guard on the address about to be dialed; Allow, or BLOCK with the reason.</summary>
    public DecisionResult CheckResolved(IPAddress address, IDecisionTrace? trace = null)
    {
        var reason = Network.Check(address);
        trace?.Step(reason is null ? $"network guard: {address} may be dialed" : $"network guard: {address} refused ({reason})");
        return reason is null ? DecisionResult.Allow(Reasons.Allowed) : DecisionResult.Refuse(Decision.Block, 403, reason);
    }

    /// <summary>Whether an open tunnel may go on under this policy now; consumes nothing.</summary>
    public TunnelVerdict Recheck(AgentPlan agent, ReadOnlySpan<byte> host, int port, DateTimeOffset now) =>
        Recheck(agent, new RequestFacts(host, port, "CONNECT"u8, default, default, null, isConnect: true), now);

    /// <summary>
    /// The same question for a request in flight, with everything the rules read (a forwarded or
    /// inspected request's method, path and user agent): a reload that adds a path rule ends a long
    /// response on that path, not only one whose host it stops allowing. Takes no token.
    /// </summary>
    public TunnelVerdict Recheck(AgentPlan agent, in RequestFacts facts, DateTimeOffset now)
    {
        if (agent.Suspended)
        {
            return TunnelVerdict.PolicyRevoked;
        }

        var result = Evaluate(agent, facts, now, 0, consume: false, trace: null, out _);
        return result.Decision switch
        {
            Decision.Allow or Decision.RateLimited => TunnelVerdict.Keep,
            Decision.TimeRestricted => TunnelVerdict.WindowClosed,
            _ => TunnelVerdict.PolicyRevoked,
        };
    }

    /// <summary>
    /// Whether this agent's tunnel to <paramref name="host"/>:<paramref name="port"/> would be held
    /// under <c>ask</c> now; consumes nothing. After a reload, the approvals it no longer concerns are
    /// settled and their requests decided again (<c>PendingApprovals.Reconsider</c>).
    /// </summary>
    public bool WouldAsk(AgentPlan agent, ReadOnlySpan<byte> host, int port, DateTimeOffset now) =>
        !agent.Suspended && ReferenceEquals(Evaluate(agent, new RequestFacts(host, port, "CONNECT"u8, default, default, null, isConnect: true), now, 0, consume: false, trace: null, out _).Reason, Reasons.ApprovalRequired);

    /// <summary>
    /// SPEC §4 "Decision precedence", one step per line; the first step that decides wins. Identity
    /// (credentials, suspension) was settled by <see cref="Authenticate"/> before this is called.
    /// The steps are inlined into this one frame (the old single-method form cost 100 ns; as calls,
    /// each with its own frame to zero and an out struct to copy, they cost 60 % more), and what
    /// <c>policy explain</c> prints is formatted in <see cref="Explain"/>, out of line, so it adds
    /// neither code nor stack to the proxy's path, which passes no trace.
    /// </summary>
    /// <param name="inspect">The request is a tunnel whose host an <c>inspect</c> pattern of the agent's policies matches (SPEC §7).</param>
    private DecisionResult Evaluate(AgentPlan agent, in RequestFacts facts, DateTimeOffset now, long nowTicks, bool consume, IDecisionTrace? trace, out bool inspect)
    {
        inspect = false;
        Span<int> matched = stackalloc int[PolicyCompiler.MaxMatchesPerHost];
        Span<ulong> candidates = stackalloc ulong[RuleWords];
        scoped var walk = new Walk(agent, now, nowTicks, consume, trace);

        // One walk, the port in the index: only patterns that cover this port match, and the port
        // step below reads the same matches.
        walk.Matches = matched[..Automaton.Match(facts.Host, facts.Port, matched)];
        if (RefusedByNetwork(ref walk, facts, out var result) || OverBudget(ref walk, facts, out result))
        {
            return result;
        }

        if (trace is not null)
        {
            Explain.Matches(trace, walk.Matches, this, facts);
        }

        // Known before the walk: an inspected tunnel's own decision leaves method, path and user-agent
        // conditions and the bucket tokens to its inner requests (SPEC §7).
        if (AnyInspect && facts.IsConnect)
        {
            inspect = walk.Inspect = Inspects(ref walk);
        }

        if (Granted(ref walk, out result))
        {
            return result;
        }

        walk.AnyCandidate = RuleCandidates(walk.Matches, candidates);
        walk.Candidates = candidates;
        var blocked = FindBlock(ref walk);
        foreach (var policy in agent.Order)
        {
            if (trace is not null)
            {
                Explain.Policy(trace, policy);
            }

            if (RuleDecides(ref walk, facts, policy, out result))
            {
                return result;
            }

            // Blocked wins over every allow, a rule's included: "a domain blocked anywhere in the
            // merged set is blocked, whatever allows it".
            if (blocked.Policy is not null)
            {
                return Blocked(ref walk, blocked);
            }

            if (walk.AllowRule is null && !Allows(policy, walk.Matches))
            {
                trace?.Step("  domain not in this policy's allowed list");
                continue;
            }

            if (trace is not null && walk.AllowRule is null)
            {
                Explain.AllowedBy(trace, this, policy, walk.Matches);
            }

            return AllowedUnderLimits(ref walk, facts, policy);
        }

        return blocked.Policy is not null ? Blocked(ref walk, blocked) : Default(ref walk, facts.Host);
    }

    /// <summary>What one decision carries from step to step (the request's facts travel beside it, by reference).</summary>
    private ref struct Walk(AgentPlan agent, DateTimeOffset now, long nowTicks, bool consume, IDecisionTrace? trace)
    {
        public readonly AgentPlan Agent = agent;
        public readonly DateTimeOffset Now = now;
        public readonly long NowTicks = nowTicks;
        public readonly bool Consume = consume;
        public readonly IDecisionTrace? Trace = trace;
        public ReadOnlySpan<int> Matches;
        public ReadOnlySpan<ulong> Candidates;
        public bool AnyCandidate;
        public int LocalMinute = -1;
        public string? LoggedRule;

        /// <summary>A tunnel to be inspected: rules on the inner request and bucket tokens are left to its inner requests.</summary>
        public bool Inspect;

        /// <summary>The allow rule that matched in the policy being walked (it stands in for the allowed list).</summary>
        public Rule? AllowRule;
    }

    /// <summary>
    /// Network guard on what is known before DNS: the port (in <c>allowedPorts</c>, or covered by a
    /// port-scoped allowed pattern of the agent's policies that matches the host: SPEC §4 and §8), and
    /// the host if it is an IP literal.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool RefusedByNetwork(ref Walk w, in RequestFacts facts, out DecisionResult result)
    {
        if (!Network.PortAllowed(facts.Port) && !PortAdmitted(ref w, facts))
        {
            result = DecisionResult.Refuse(Decision.Block, 403, Reasons.PortNotAllowed);
            return true;
        }

        if (TryParseLiteral(facts.Host, out var literal) && Network.Check(literal!) is { } guardReason)
        {
            if (w.Trace is not null)
            {
                Explain.LiteralRefused(w.Trace, literal!, guardReason);
            }

            result = DecisionResult.Refuse(Decision.Block, 403, guardReason);
            return true;
        }

        Unsafe.SkipInit(out result);
        return false;
    }

    /// <summary>
    /// A port outside allowedPorts is admitted by a matched pattern that is port-scoped and in the
    /// merged allowed list of one of the agent's policies. The matches already cover the port, so this
    /// reads two flags per match; out of line, as most requests use an allowedPorts port.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool PortAdmitted(ref Walk w, in RequestFacts facts)
    {
        var admittedBy = -1;
        foreach (var m in w.Matches)
        {
            if (PortScoped[m] && Intersects(AllowedMask.AsSpan(m * Words, Words), w.Agent.PolicyMask))
            {
                admittedBy = m;
                break;
            }
        }

        if (w.Trace is not null)
        {
            Explain.Port(w.Trace, facts, admittedBy, this, w.Matches);
        }

        return admittedBy >= 0;
    }

    /// <summary>Budgets: concurrent tunnels (the proxy takes the slot once allowed) and egress bytes today.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool OverBudget(ref Walk w, in RequestFacts facts, out DecisionResult result)
    {
        var runtime = w.Agent.Runtime;
        if (w.Consume && facts.IsConnect && runtime.OpenTunnels >= MaxTunnelsPerAgent)
        {
            if (w.Trace is not null)
            {
                Explain.TunnelBudget(w.Trace, runtime.OpenTunnels, MaxTunnelsPerAgent);
            }

            result = DecisionResult.Refuse(Decision.RateLimited, 429, Reasons.TunnelLimit, retryAfter: 1);
            return true;
        }

        if (w.Agent.EgressBytesPerDay is { } budget && runtime.EgressToday(Day(w.Now)) is var spent && spent >= budget)
        {
            if (w.Trace is not null)
            {
                Explain.EgressBudget(w.Trace, spent, budget);
            }

            result = DecisionResult.Refuse(Decision.RateLimited, 429, Reasons.EgressBudget, retryAfter: SecondsToNextDay(w.Now));
            return true;
        }

        Unsafe.SkipInit(out result);
        return false;
    }

    /// <summary>
    /// An unexpired grant for this agent and domain allows it, before the per-policy walk and so
    /// before blocked lists. SPEC §4 orders the grant ahead of "a blocked domain → BLOCK" and says
    /// the first step that applies wins; "blocked wins, whatever allows it" is about the merged
    /// policy lists (a team policy cannot lift an org block), and a grant is not in them: it is the
    /// operator's own time-boxed, per-agent exception, audited with its reason. So a grant may lift a
    /// block, on purpose; the network guard and the budgets still come first.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool Granted(ref Walk w, out DecisionResult result)
    {
        foreach (var m in w.Matches)
        {
            if (GrantsByPattern[m] is not { } grants)
            {
                continue;
            }

            foreach (var g in grants)
            {
                var applies = g.Expires > w.Now && string.Equals(g.Agent, w.Agent.Id, StringComparison.Ordinal);
                if (w.Trace is not null)
                {
                    Explain.Grant(w.Trace, Patterns[m], g, applies);
                }

                if (applies)
                {
                    result = DecisionResult.Allow(g.AuditReason);
                    return true;
                }
            }
        }

        Unsafe.SkipInit(out result);
        return false;
    }

    /// <summary>Whether a tunnel of this agent to this host and port would be inspected once allowed (explain and check; consumes nothing).</summary>
    public bool Inspects(AgentPlan agent, ReadOnlySpan<byte> host, int port)
    {
        if (!AnyInspect)
        {
            return false;
        }

        Span<int> matched = stackalloc int[PolicyCompiler.MaxMatchesPerHost];
        var w = new Walk(agent, default, 0, consume: false, trace: null)
        {
            Matches = matched[..Automaton.Match(host, port, matched)],
        };
        return Inspects(ref w);
    }

    /// <summary>A matched pattern is in the merged <c>inspect</c> list of one of the agent's policies; out of line, as few policies inspect.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool Inspects(ref Walk w)
    {
        foreach (var m in w.Matches)
        {
            if (Intersects(InspectMask.AsSpan(m * Words, Words), w.Agent.PolicyMask))
            {
                if (w.Trace is not null)
                {
                    Explain.Inspected(w.Trace, Patterns[m]);
                }

                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// Rules whose domain condition the automaton indexed are candidates only when one of their
    /// patterns matched this host; the rest are evaluated as written.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool RuleCandidates(ReadOnlySpan<int> matches, Span<ulong> candidates)
    {
        candidates.Clear();
        var any = false;
        foreach (var m in matches)
        {
            if (m < RulesByPattern.Length && RulesByPattern[m] is { } ruleIds)
            {
                any = true;
                foreach (var o in ruleIds)
                {
                    candidates[o >> 6] |= 1UL << (o & 63);
                }
            }
        }

        return any;
    }

    /// <summary>
    /// The policy's rules by priority: <c>deny</c> decides, <c>rate_limit</c> may refuse, <c>log</c>
    /// annotates and goes on, <c>allow</c> ends the walk and stands in for the allowed list (it
    /// lifts neither a block nor the policy's window, bucket and fan-out quota).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool RuleDecides(ref Walk w, in RequestFacts facts, EffectivePolicy policy, out DecisionResult result)
    {
        Unsafe.SkipInit(out result);
        w.AllowRule = null;
        if (!w.AnyCandidate && policy.AllRulesIndexed)
        {
            return false;
        }

        foreach (var rule in policy.Rules)
        {
            if (rule.Indexed && (w.Candidates[rule.Ordinal >> 6] & (1UL << (rule.Ordinal & 63))) == 0)
            {
                continue;
            }

            if (w.LocalMinute < 0)
            {
                w.LocalMinute = LocalMinuteOfWeek(policy, w.Now);
            }

            if (w.Inspect && rule.OnInnerRequest)
            {
                // The inner requests are judged by this rule; the tunnel only needs to know whether one
                // of them could be allowed by it (a deny, log or rate_limit waits for them).
                if (InnerRequestsMayBeAllowed(ref w, facts, rule))
                {
                    return false;
                }

                continue;
            }

            if (!rule.Matches(facts, w.LocalMinute))
            {
                continue;
            }

            if (w.Trace is not null)
            {
                Explain.RuleMatches(w.Trace, rule);
            }

            switch (rule.Action)
            {
                case RuleAction.Deny:
                    result = DecisionResult.Refuse(Decision.PolicyViolation, 403, Reasons.RuleDeny, policy.Name, rule.Name);
                    return true;
                case RuleAction.Allow:
                    w.AllowRule = rule;
                    return false;
                case RuleAction.Log:
                    w.LoggedRule ??= rule.Name;
                    break;
                case RuleAction.RateLimit when policy.Limits is { } limits && w.Consume && !w.Inspect:
                    if (!TakeToken(ref w, facts, policy, limits, out var wait))
                    {
                        if (w.Trace is not null)
                        {
                            Explain.BucketEmpty(w.Trace, wait);
                        }

                        result = DecisionResult.Refuse(Decision.RateLimited, 429, Reasons.RateLimit, policy.Name, rule.Name, wait);
                        return true;
                    }

                    break;
            }
        }

        return false;
    }

    /// <summary>
    /// On an inspected tunnel, an <c>allow</c> rule with conditions on the inner request stands in for
    /// the allowed list when its other conditions hold: the tunnel opens and each inner request is
    /// judged by the whole rule. Out of line: only inspected tunnels come here.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static bool InnerRequestsMayBeAllowed(ref Walk w, in RequestFacts facts, Rule rule)
    {
        if (rule.Action != RuleAction.Allow || !rule.MatchesOutsideRequest(facts, w.LocalMinute))
        {
            if (w.Trace is not null)
            {
                Explain.LeftToInnerRequests(w.Trace, rule);
            }

            return false;
        }

        if (w.Trace is not null)
        {
            Explain.RuleMatches(w.Trace, rule);
        }

        w.AllowRule = rule;
        return true;
    }

    /// <summary>The first of the agent's policies (by priority) whose merged blocked list holds a matched pattern.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private (EffectivePolicy? Policy, int Pattern) FindBlock(ref Walk w)
    {
        var any = false;
        foreach (var m in w.Matches)
        {
            if (Intersects(BlockedMask.AsSpan(m * Words, Words), w.Agent.PolicyMask))
            {
                any = true;
                break;
            }
        }

        if (!any)
        {
            return (null, -1);
        }

        foreach (var policy in w.Agent.Order)
        {
            foreach (var m in w.Matches)
            {
                if (Has(BlockedMask, m, policy))
                {
                    return (policy, m);
                }
            }
        }

        return (null, -1);
    }

    /// <summary>BLOCK, naming the policy whose own blockedDomains holds the pattern (the nearest in the blocking policy's lineage).</summary>
    private DecisionResult Blocked(ref Walk w, (EffectivePolicy? Policy, int Pattern) block)
    {
        var by = block.Policy!;
        var nearest = int.MaxValue;
        foreach (var declared in BlockedBy[block.Pattern] ?? [])
        {
            if (by.LineagePosition.TryGetValue(declared, out var position) && position < nearest)
            {
                nearest = position;
            }
        }

        var name = nearest == int.MaxValue ? by.Name : by.Lineage[nearest];
        if (w.Trace is not null)
        {
            Explain.Blocked(w.Trace, Patterns[block.Pattern], name, by.Name);
        }

        return DecisionResult.Refuse(Decision.Block, 403, Reasons.DomainBlocked, name, w.LoggedRule);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool Allows(EffectivePolicy policy, ReadOnlySpan<int> matches)
    {
        foreach (var m in matches)
        {
            if (Has(AllowedMask, m, policy))
            {
                return true;
            }
        }

        return false;
    }

    private bool Has(ulong[] mask, int pattern, EffectivePolicy policy) =>
        (mask[(pattern * Words) + (policy.Index >> 6)] & (1UL << (policy.Index & 63))) != 0;

    /// <summary>An allowed domain: outside the time window, bucket empty, fan-out quota spent, else ALLOW.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static DecisionResult AllowedUnderLimits(ref Walk w, in RequestFacts facts, EffectivePolicy policy)
    {
        var (reason, rule) = w.AllowRule is { } allowRule ? (Reasons.RuleAllow, allowRule.Name) : (Reasons.Allowed, w.LoggedRule);
        var now = w.Now;
        if (policy.Window is { } window)
        {
            if (!window.IsOpen(now))
            {
                return OutsideWindow(w.Trace, window, now, policy, rule);
            }

            if (w.Trace is not null)
            {
                Explain.WindowOpen(w.Trace, window);
            }
        }

        // An inspected tunnel takes no token: each inner request takes its own (SPEC §7).
        if (w.Consume && !w.Inspect && policy.Limits is { } limits && !TakeToken(ref w, facts, policy, limits, out var wait))
        {
            if (w.Trace is not null)
            {
                Explain.BucketEmpty(w.Trace, wait);
            }

            return DecisionResult.Refuse(Decision.RateLimited, 429, Reasons.RateLimit, policy.Name, rule, wait);
        }

        if (w.Consume && policy.MaxNewDomainsPerHour is { } quota && !w.Agent.Runtime.TryNoteDomain(Hour(now), DomainHash.Of(facts.Host), quota))
        {
            if (w.Trace is not null)
            {
                Explain.FanOut(w.Trace, quota);
            }

            return DecisionResult.Refuse(Decision.RateLimited, 429, Reasons.FanOut, policy.Name, rule, SecondsToNextHour(now));
        }

        if (w.Trace is not null)
        {
            Explain.Allowed(w.Trace, w.AllowRule is null ? null : rule);
        }

        return DecisionResult.Allow(reason, policy.Name, rule);
    }

    private static DecisionResult OutsideWindow(IDecisionTrace? trace, TimeWindow window, DateTimeOffset now, EffectivePolicy policy, string? rule)
    {
        var opens = window.NextOpening(now);
        if (trace is not null)
        {
            Explain.WindowClosed(trace, window, opens);
        }

        var closed = DecisionResult.Refuse(Decision.TimeRestricted, 403, Reasons.OutsideWindow, policy.Name, rule,
            opens is { } o ? Math.Max(1, (long)Math.Ceiling((o - now).TotalSeconds)) : -1);
        closed.RetryAt = opens;
        return closed;
    }

    private DecisionResult Default(ref Walk w, ReadOnlySpan<byte> host)
    {
        var ask = w.Agent.AsksUnlisted;
        w.Trace?.Step(ask ? "nothing matched: ask (held for an operator's approval)" : $"nothing matched: defaultAction {(DefaultAllow ? "allow" : "deny")}");
        if ((ask || !DefaultAllow) && RuntimeGrants?.Find(w.Agent.Id, host, w.Now) is { } granted)
        {
            // Only here: a runtime grant (an approval is one) lifts the default and nothing that
            // decided before it (SPEC §9).
            w.Trace?.Step($"runtime grant {granted.Id}: until {granted.Expires:O} ({granted.AuditReason})");
            return DecisionResult.Allow(granted.AuditReason, null, w.LoggedRule);
        }

        if (ask)
        {
            // A refusal until someone approves: the proxy holds it (RequestScope.HoldAsync); observe
            // mode lets it through and records what enforce would have done.
            return DecisionResult.Refuse(Decision.Deny, 403, Reasons.ApprovalRequired, null, w.LoggedRule);
        }

        return DefaultAllow
            ? DecisionResult.Allow(Reasons.DefaultAllow, null, w.LoggedRule)
            : DecisionResult.Refuse(Decision.Deny, 403, Reasons.DefaultDeny, null, w.LoggedRule);
    }

    private static bool TakeToken(ref Walk w, in RequestFacts facts, EffectivePolicy policy, RateLimits limits, out long wait)
    {
        var position = Array.IndexOf(w.Agent.Order, policy);
        return policy.PerDomainBuckets
            ? w.Agent.DomainBuckets[position]!.TryTake(limits, DomainHash.Of(facts.Host), w.NowTicks, out wait)
            : limits.TryTake(w.Agent.Buckets[position]!, w.NowTicks, out wait);
    }

    /// <summary>A named policy's merged allowed (or blocked) patterns, read back from the masks (explain and tests; not the hot path).</summary>
    internal string[] MergedList(EffectivePolicy policy, bool blocked)
    {
        var list = new List<string>();
        for (var m = 0; m < Patterns.Length; m++)
        {
            if (Has(blocked ? BlockedMask : AllowedMask, m, policy))
            {
                list.Add(Patterns[m]);
            }
        }

        return [.. list];
    }

    /// <summary>A named policy's merged <c>inspect</c> patterns (check and tests; not the hot path).</summary>
    internal string[] MergedInspect(EffectivePolicy policy)
    {
        var list = new List<string>();
        for (var m = 0; AnyInspect && m < Patterns.Length; m++)
        {
            if (Has(InspectMask, m, policy))
            {
                list.Add(Patterns[m]);
            }
        }

        return [.. list];
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
