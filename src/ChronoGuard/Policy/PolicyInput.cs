namespace ChronoGuard.Policy;

/// <summary>
/// A policy document after the validation stage: every value checked and turned into its compiled
/// form (pattern ids, rules, windows, limits, policy indices), so the later stages cannot fail on
/// input. Indexed by the position of the policy in <c>$.policies</c>.
/// </summary>
internal sealed class PolicyInput
{
    public required bool Observe { get; init; }

    public required bool DefaultAllow { get; init; }

    /// <summary><c>"defaultAction": "ask"</c> (SPEC §9): what nothing allows or blocks is held for an operator's approval.</summary>
    public bool DefaultAsk { get; init; }

    /// <summary>The admin API is on: without it, <c>ask</c> is a load error.</summary>
    public bool ApprovalsConfigured { get; init; }

    /// <summary>Inspection (a CA) is configured: without it, <c>inspect</c> and <c>credentials</c> are load errors.</summary>
    public required bool InspectionConfigured { get; init; }

    public required NetworkGuard Network { get; init; }

    public required PolicyEntry[] Entries { get; init; }

    /// <summary>Per policy: the indices it extends, in the order written.</summary>
    public required int[][] Parents { get; init; }

    /// <summary>One id per distinct normalized pattern (the rule index adds more later).</summary>
    public required List<string> Patterns { get; init; }

    public required Dictionary<string, int> PatternIds { get; init; }

    public required int[][] OwnAllowed { get; init; }

    public required int[][] OwnBlocked { get; init; }

    /// <summary>Per pattern id, the (policy, preset) pairs that brought it in through <c>presets</c>; explain names them.</summary>
    public Dictionary<int, List<(int Policy, string Preset)>> PresetPatterns { get; } = [];

    /// <summary>Per policy: the pattern ids of its own <c>inspect</c> list (SPEC §7).</summary>
    public required int[][] OwnInspect { get; init; }

    public required List<Rule>[] OwnRules { get; init; }

    public required TimeWindow?[] Windows { get; init; }

    public required RateLimits?[] Limits { get; init; }

    public (string Agent, DateTimeOffset Expires, string AuditReason, int[] Patterns)[] Grants { get; set; } = [];

    /// <summary>Agents with their distinct policy indices in the order written.</summary>
    public (string Id, byte[] TokenHash, bool Suspended, int[] Policies)[] Agents { get; set; } = [];
}
