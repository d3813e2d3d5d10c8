namespace ChronoGuard.Policy;

/// <summary>A policy with everything it inherits through <c>extends</c> merged in.</summary>
internal sealed class EffectivePolicy
{
    public required string Name { get; init; }

    public required int Priority { get; init; }

    /// <summary>Position in <see cref="CompiledPolicy.Policies"/> (the policies agents name): its bit in the per-pattern masks.</summary>
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

    /// <summary>Own and inherited <c>dnsTypes</c>, sorted: query types the DNS guard answers beyond the defaults (SPEC §10).</summary>
    public ushort[] DnsTypes { get; init; } = [];

    /// <summary>It or a policy it extends says <c>"unlisted": "ask"</c> (SPEC §9).</summary>
    public bool AsksUnlisted { get; init; }

    /// <summary>Self first, then ancestors in topological order.</summary>
    public required string[] Lineage { get; init; }

    /// <summary>Its position in <c>$.policies</c>.</summary>
    public required int DeclaredIndex { get; init; }

    /// <summary>Declared index → position in <see cref="Lineage"/>: which ancestor's list an inherited entry comes from.</summary>
    public required IReadOnlyDictionary<int, int> LineagePosition { get; init; }
}
