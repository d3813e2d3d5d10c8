namespace ChronoGuard.Policy;

internal sealed partial class CompiledPolicy
{
    /// <summary>
    /// SPEC §10: whether the agent's policies could allow some request to <paramref name="name"/>, so
    /// the DNS guard may resolve it. The same automaton and masks as <see cref="Decide"/>, but ignoring
    /// ports, time windows, buckets and budgets (a question has none of them): an unexpired grant, a
    /// pattern in one of its policies' allowed lists, an <c>allow</c> rule whose domain conditions all
    /// hold (a rule without one does not count: it would open every name), <c>defaultAction</c>
    /// allow, or <c>ask</c>. A pattern without a port in a blocked list wins over all but a grant, as in
    /// <see cref="Decide"/>; a port-scoped block leaves the name's other ports, so it does not refuse
    /// the name. Allocation-free; a suspended agent may resolve nothing.
    /// </summary>
    public bool CouldAllowName(AgentPlan agent, ReadOnlySpan<byte> name, DateTimeOffset now)
    {
        if (agent.Suspended)
        {
            return false;
        }

        Span<int> matched = stackalloc int[PolicyCompiler.MaxMatchesPerHost];
        var matches = matched[..Automaton.MatchAnyPort(name, matched)];
        foreach (var m in matches)
        {
            foreach (var g in GrantsByPattern[m] ?? [])
            {
                if (g.Expires > now && string.Equals(g.Agent, agent.Id, StringComparison.Ordinal))
                {
                    return true;
                }
            }
        }

        foreach (var m in matches)
        {
            if (!PortScoped[m] && Intersects(BlockedMask.AsSpan(m * Words, Words), agent.PolicyMask))
            {
                return false;
            }
        }

        foreach (var m in matches)
        {
            if (Intersects(AllowedMask.AsSpan(m * Words, Words), agent.PolicyMask))
            {
                return true;
            }
        }

        var facts = new RequestFacts(name, 0, default, default, default, null, isConnect: false);
        foreach (var policy in agent.Order)
        {
            foreach (var rule in policy.Rules)
            {
                if (rule.Action == RuleAction.Allow && DomainConditionsHold(rule, facts))
                {
                    return true;
                }
            }
        }

        // A name an operator may still approve (ask) is answered: the request it leads to is what is held.
        return DefaultAllow || agent.AsksUnlisted || RuntimeGrants?.Find(agent.Id, name, now) is not null;
    }

    /// <summary>Whether one of the agent's policies lists <paramref name="type"/> in <c>dnsTypes</c> (the defaults need no listing).</summary>
    public static bool AllowsDnsType(AgentPlan agent, ushort type)
    {
        if (DnsTypeNames.IsDefault(type))
        {
            return true;
        }

        foreach (var policy in agent.Order)
        {
            if (Array.BinarySearch(policy.DnsTypes, type) >= 0)
            {
                return true;
            }
        }

        return false;
    }

    private static bool DomainConditionsHold(Rule rule, in RequestFacts facts)
    {
        var any = false;
        foreach (var c in rule.When)
        {
            if (c.Field != RuleField.Domain)
            {
                continue;
            }

            if (!c.Matches(facts, 0, eitherReading: false))
            {
                return false;
            }

            any = true;
        }

        return any;
    }
}
