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

    public override string ToString() => Name;
}
