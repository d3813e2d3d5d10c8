namespace ChronoGuard.Policy;

/// <summary>A compiled rule: all conditions must hold (an empty list always holds).</summary>
internal sealed class Rule
{
    private readonly Condition[] _when = [];

    public required string Name { get; init; }

    public required int Priority { get; init; }

    public required RuleAction Action { get; init; }

    public required Condition[] When
    {
        get => _when;
        init
        {
            _when = value;
            OnInnerRequest = Array.Exists(value, static c => c.Field is RuleField.Method or RuleField.Path or RuleField.UserAgent);
        }
    }

    /// <summary>
    /// A condition reads the method, path or user agent: on an inspected tunnel (SPEC §7) those are the
    /// inner requests' business, so the tunnel's own decision leaves the rule to them.
    /// </summary>
    public bool OnInnerRequest { get; private init; }

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

    /// <summary>
    /// Whether the conditions an inspected tunnel can judge hold (those on the method, path and user
    /// agent are left out): for an <c>allow</c> rule, whether some inner request could be allowed by it.
    /// </summary>
    public bool MatchesOutsideRequest(in RequestFacts facts, int localMinuteOfWeek)
    {
        foreach (var c in When)
        {
            if (c.Field is not (RuleField.Method or RuleField.Path or RuleField.UserAgent) && !c.Matches(facts, localMinuteOfWeek, eitherReading: false))
            {
                return false;
            }
        }

        return true;
    }
}
