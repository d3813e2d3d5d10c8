namespace ChronoGuard.Policy;

/// <summary>
/// One built-in allow-list a policy names in <c>presets</c> (SPEC §9): the hosts a toolchain needs, as
/// the vendor documents them (<see cref="Sources"/>), versioned with the repository.
/// </summary>
internal sealed class PolicyPreset
{
    public required string Name { get; init; }

    /// <summary>Raised whenever the host list changes, so a policy's meaning can be traced to a list.</summary>
    public required int Version { get; init; }

    public required string Description { get; init; }

    /// <summary>The vendor pages the host list was taken from.</summary>
    public required string[] Sources { get; init; }

    /// <summary>Canonical patterns (<see cref="DomainNames.TryNormalizeEntry"/>), ports where they matter.</summary>
    public required string[] Domains { get; init; }
}
