namespace ChronoGuard.Admin;

/// <summary>One accepted admin token: <c>{ "Name": "ops-alice", "Sha256": "&lt;hex&gt;" }</c> (<c>chronoguard hash-token</c> prints the hash).</summary>
internal sealed class AdminTokenEntry
{
    /// <summary>Who holds it: recorded as the actor of every change made with it.</summary>
    public string Name { get; set; } = string.Empty;

    /// <summary>Lowercase or uppercase hex SHA-256 of the token's UTF-8 bytes (64 digits).</summary>
    public string Sha256 { get; set; } = string.Empty;
}
