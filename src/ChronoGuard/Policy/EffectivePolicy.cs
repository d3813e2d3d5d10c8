namespace ChronoGuard.Policy;

/// <summary>A policy with everything it inherits through <c>extends</c> merged in.</summary>
internal sealed class EffectivePolicy
{
    public required string Name { get; init; }

    public required int Priority { get; init; }

    /// <summary>Position in <see cref="CompiledPolicy.Policies"/>: its bit in the per-pattern masks.</summary>
    public required int Index { get; init; }

    /// <summary>Own and inherited rules, by ascending rule priority.</summary>
    public required Rule[] Rules { get; init; }

    /// <summary>Every rule has an indexed domain condition: with no candidate, the rule walk is skipped.</summary>
    public bool AllRulesIndexed { get; set; }

    public TimeWindow? Window { get; init; }

    public RateLimits? Limits { get; init; }

    public bool PerDomainBuckets { get; init; }

    public long? EgressBytesPerDay { get; init; }

    public int? MaxNewDomainsPerHour { get; init; }

    /// <summary>Merged lists, for explain and for the compiler's checks.</summary>
    public required string[] Allowed { get; init; }

    public required string[] Blocked { get; init; }

    /// <summary>Self first, then ancestors in topological order.</summary>
    public required string[] Lineage { get; init; }
}
