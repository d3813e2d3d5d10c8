namespace ChronoGuard.Admin;

/// <summary>The <c>Admin</c> configuration section (SPEC §9).</summary>
internal sealed class AdminOptions
{
    /// <summary>HOST:PORT of the admin listener; empty (the default) is off. Never the stats port.</summary>
    public string Listen { get; set; } = string.Empty;

    /// <summary>The bearer tokens the admin API accepts, by the SHA-256 of each; the name is recorded as the actor.</summary>
    public List<AdminTokenEntry> TokenSha256 { get; set; } = [];
}
