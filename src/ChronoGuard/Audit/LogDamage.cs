namespace ChronoGuard.Audit;

/// <summary>What kind of damage a scan found (docs/audit-format.md names each).</summary>
internal enum LogDamageKind
{
    /// <summary>A record fails its checksum or cannot be read: the log is unreadable from there on.</summary>
    Unreadable,

    /// <summary>A segment file between the first one kept and the tail is missing.</summary>
    MissingSegment,

    /// <summary>The commit metadata (log-commits) is missing, empty or cannot be read.</summary>
    CommitMetadata,

    /// <summary>The log is readable but ends before the seq the head file says was committed.</summary>
    ShortOfHead,
}

/// <summary>
/// Damage in an audit directory: where the readable log ends (the last good seq and the log address
/// after it) and what is wrong, in one plain sentence.
/// </summary>
internal sealed record LogDamage(LogDamageKind Kind, long LastGoodSeq, long Address, string Problem);
