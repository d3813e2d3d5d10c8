namespace ChronoGuard.Policy;

/// <summary>One agent as compiled: credentials, its policies in decision order, its runtime state.</summary>
internal sealed class AgentPlan
{
    public required string Id { get; init; }

    /// <summary>SHA-256 of the token; null for the observe-mode agent, which needs no credentials.</summary>
    public byte[]? TokenHash { get; init; }

    public bool Suspended { get; init; }

    /// <summary>By ascending policy priority.</summary>
    public required EffectivePolicy[] Order { get; init; }

    /// <summary>Bit i set when policy i is one of this agent's (for blocked-wins across the set).</summary>
    public required ulong[] PolicyMask { get; init; }

    /// <summary>Agent-scoped bucket state per entry of <see cref="Order"/> (null where a policy has no limits).</summary>
    public required BucketState?[] Buckets { get; init; }

    /// <summary>Per entry of <see cref="Order"/>: its agent × domain bucket table (null unless the policy's scope is <c>agent_domain</c>).</summary>
    public DomainBuckets?[] DomainBuckets { get; init; } = [];

    public required AgentRuntime Runtime { get; init; }

    /// <summary>Per entry of <see cref="CompiledPolicy.Credentials"/>: this agent's injection buckets (null where it is not listed or there are no limits).</summary>
    public BucketState?[] CredentialBuckets { get; set; } = [];

    /// <summary>The smallest egress budget among its policies, or null.</summary>
    public long? EgressBytesPerDay { get; init; }

    /// <summary>
    /// What nothing allows or blocks is held for an operator's approval (SPEC §9): the file's
    /// <c>defaultAction</c> is <c>ask</c>, or one of the agent's policies says <c>"unlisted": "ask"</c>
    /// (which then wins over <c>defaultAction</c> for this agent, <c>allow</c> included).
    /// </summary>
    public bool AsksUnlisted { get; init; }

    /// <summary>The agent's slot for metrics (index in the policy's agent list; 0 for observe mode).</summary>
    public int Slot { get; init; }
}
