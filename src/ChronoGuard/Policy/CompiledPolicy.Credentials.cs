namespace ChronoGuard.Policy;

internal sealed partial class CompiledPolicy
{
    /// <summary>
    /// SPEC §7, after the §4 walk said ALLOW: misdirected, then required, then window, then rate; when
    /// all pass and the request carries a credential's placeholder where it is bound, that credential
    /// is the one to inject (<see cref="DecisionResult.Credential"/> on an ALLOW). Call only when
    /// <see cref="Credentials"/> is not empty. No allocation: one vectorized search of the head per
    /// credential and one automaton walk of the host.
    /// </summary>
    /// <param name="rawHead">The request line and headers as received (empty for a SOCKS tunnel): where placeholders are looked for.</param>
    /// <param name="inspected">The request arrived inside an inspected TLS tunnel whose SNI and CONNECT host equal <paramref name="host"/>: the only place a credential is bound.</param>
    /// <param name="tunnel">A CONNECT/SOCKS tunnel's own decision: it can be misdirected (its head is seen), never required.</param>
    public DecisionResult ApplyCredentials(AgentPlan agent, ReadOnlySpan<byte> host, int port, ReadOnlySpan<byte> rawHead, bool inspected, bool tunnel, DateTimeOffset now, long nowTicks, in DecisionResult allowed, bool consume = true, IDecisionTrace? trace = null)
    {
        var bound = tunnel ? null : BoundCredential(agent, host, port);
        CompiledCredential? carried = null;
        foreach (var c in Credentials)
        {
            if (rawHead.IndexOf(c.Placeholder) < 0)
            {
                continue;
            }

            if (!inspected || !ReferenceEquals(c, bound))
            {
                trace?.Step($"credential {c.Name}: its placeholder is in the request, which is not bound to it{(inspected ? " (another agent or host)" : tunnel ? " (a tunnel's own head)" : " (not inside inspected TLS)")}: misdirected");
                return Refused(allowed, Decision.PolicyViolation, 403, Reasons.CredentialMisdirected, c);
            }

            carried = c;
        }

        if (bound is null)
        {
            return allowed;
        }

        if (carried is null)
        {
            if (bound.Require)
            {
                trace?.Step($"credential {bound.Name}: required for this agent and host, and the request does not carry its placeholder");
                return Refused(allowed, Decision.PolicyViolation, 403, Reasons.CredentialRequired, bound);
            }

            trace?.Step($"credential {bound.Name}: not carried (the request has no placeholder): nothing injected");
            return allowed;
        }

        if (carried.Window is { } window && !window.IsOpen(now))
        {
            var opens = window.NextOpening(now);
            trace?.Step($"credential {carried.Name}: outside its time window ({window.Zone.Id}); opens {opens:O}");
            var closed = Refused(allowed, Decision.TimeRestricted, 403, Reasons.CredentialWindow, carried,
                opens is { } o ? Math.Max(1, (long)Math.Ceiling((o - now).TotalSeconds)) : -1);
            closed.RetryAt = opens;
            return closed;
        }

        if (consume && carried.Limits is { } limits && agent.CredentialBuckets[carried.Index] is { } bucket && !limits.TryTake(bucket, nowTicks, out var wait))
        {
            trace?.Step($"credential {carried.Name}: injection bucket empty: retry after {wait} s");
            return Refused(allowed, Decision.RateLimited, 429, Reasons.CredentialRateLimit, carried, wait);
        }

        trace?.Step($"credential {carried.Name}: {carried.Header} is replaced (secret from {carried.Source})");
        var injected = allowed;
        injected.Credential = carried;
        return injected;
    }

    /// <summary>The credential serving this agent on this host (at most one: the loader refuses overlaps), or null.</summary>
    public CompiledCredential? BoundCredential(AgentPlan agent, ReadOnlySpan<byte> host, int port)
    {
        Span<int> matched = stackalloc int[PolicyCompiler.MaxMatchesPerHost];
        var n = CredentialDomains.Match(host, port, matched);
        for (var i = 0; i < n; i++)
        {
            if (CredentialsByDomain[matched[i]] is not { } credentials)
            {
                continue;
            }

            foreach (var c in credentials)
            {
                if ((uint)agent.Slot < (uint)c.AgentSlots.Length && c.AgentSlots[agent.Slot] && !ReferenceEquals(agent, Anonymous))
                {
                    return c;
                }
            }
        }

        return null;
    }

    private static DecisionResult Refused(in DecisionResult allowed, Decision decision, int status, string reason, CompiledCredential credential, long retryAfter = -1)
    {
        var refused = DecisionResult.Refuse(decision, status, reason, allowed.Policy, allowed.Rule, retryAfter);
        refused.Credential = credential;
        return refused;
    }
}
