namespace ChronoGuard.Policy;

/// <summary>A compiled rule: all conditions must hold (an empty list always holds).</summary>
internal sealed class Rule
{
    public required string Name { get; init; }

    public required int Priority { get; init; }

    public required RuleAction Action { get; init; }

    public required Condition[] When { get; init; }

    /// <summary>Position among all rules of the compiled policy (bit in the candidate set of a decision).</summary>
    public int Ordinal { get; set; }

    /// <summary>
    /// True when a domain condition was indexed in the automaton: the rule can only match a host that
    /// matched one of its patterns, so a decision skips it unless that happened.
    /// </summary>
    public bool Indexed { get; set; }

    /// <summary>The policy that declared it (rules are inherited through <c>extends</c>).</summary>
    public required string Origin { get; init; }

    public bool Matches(in RequestFacts facts, int localMinuteOfWeek)
    {
        var eitherReading = Action != RuleAction.Allow;
        foreach (var c in When)
        {
            if (!c.Matches(facts, localMinuteOfWeek, eitherReading))
            {
                return false;
            }
        }

        return true;
    }
}
