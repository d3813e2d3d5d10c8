namespace ChronoGuard.Policy;

/// <summary>A compiled rule: all conditions must hold (an empty list always holds).</summary>
internal sealed class Rule
{
    public required string Name { get; init; }

    public required int Priority { get; init; }

    public required RuleAction Action { get; init; }

    public required Condition[] When { get; init; }

    /// <summary>The policy that declared it (rules are inherited through <c>extends</c>).</summary>
    public required string Origin { get; init; }

    public bool Matches(in RequestFacts facts, int localMinuteOfWeek)
    {
        foreach (var c in When)
        {
            if (!c.Matches(facts, localMinuteOfWeek))
            {
                return false;
            }
        }

        return true;
    }
}
