namespace ChronoGuard.Policy;

/// <summary>
/// One entry of the policy's <c>credentials</c> (SPEC §7), compiled. The secret lives only in
/// <see cref="HeaderValue"/>, which is written to the upstream and nowhere else.
/// </summary>
internal sealed class CompiledCredential
{
    /// <summary>The name records carry (the secret never is).</summary>
    public required string Name { get; init; }

    /// <summary>The header whose whole value is replaced, as ASCII bytes (e.g. <c>Authorization</c>).</summary>
    public required byte[] HeaderName { get; init; }

    /// <summary>What the header becomes: <c>value</c> with <c>{secret}</c> replaced.</summary>
    public required byte[] HeaderValue { get; init; }

    /// <summary>What the agent sends instead of the secret.</summary>
    public required byte[] Placeholder { get; init; }

    /// <summary>Position in <see cref="CompiledPolicy.Credentials"/> (and in each agent's credential buckets).</summary>
    public required int Index { get; init; }

    /// <summary>Per agent slot (<see cref="AgentPlan.Slot"/>): the agent is in <c>agents</c>.</summary>
    public required bool[] AgentSlots { get; init; }

    /// <summary>The agent ids as written (explain and check).</summary>
    public required string[] Agents { get; init; }

    /// <summary>The normalized domain patterns (exact or <c>*.suffix</c>).</summary>
    public required string[] Domains { get; init; }

    /// <summary>The header name as written (explain).</summary>
    public required string Header { get; init; }

    /// <summary>A request of a listed agent to these domains without the placeholder is refused.</summary>
    public bool Require { get; init; }

    /// <summary>Outside it, a request carrying the placeholder is refused (no injection).</summary>
    public TimeWindow? Window { get; init; }

    /// <summary>Injections per agent.</summary>
    public RateLimits? Limits { get; init; }

    /// <summary>Where the secret came from (<c>secretFile</c> path or <c>env:NAME</c>), for check and explain; never the secret.</summary>
    public required string Source { get; init; }

    public override string ToString() => Name;
}
