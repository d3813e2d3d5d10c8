namespace ChronoGuard.Admin;

/// <summary>The <c>Admin</c> configuration section (SPEC §9).</summary>
internal sealed class AdminOptions
{
    /// <summary>HOST:PORT of the admin listener; empty (the default) is off. Never the stats port.</summary>
    public string Listen { get; set; } = string.Empty;

    /// <summary>The bearer tokens the admin API accepts, by the SHA-256 of each; the name is recorded as the actor.</summary>
    public List<AdminTokenEntry> TokenSha256 { get; set; } = [];

    /// <summary>How long a request held by <c>ask</c> waits for an approval before it is refused <c>approval_timeout</c> (SPEC §9).</summary>
    public int AskTimeoutMs { get; set; } = 30_000;

    /// <summary>Open approvals at most; a request that would open one more is refused at once (<c>approval_queue_full</c>).</summary>
    public int MaxPending { get; set; } = 256;
}
