namespace ChronoGuard.Audit;

/// <summary>What kind of damage a scan found (docs/audit-format.md names each).</summary>
internal enum LogDamageKind
{
    /// <summary>A committed entry fails its checksum, has an impossible length, or is zeros: the log is unreadable from there on.</summary>
    Unreadable,

    /// <summary>A segment file the committed log needs is missing, shorter than it, or cut off a sector boundary.</summary>
    MissingSegment,

    /// <summary>The commit metadata (log-commits) is missing, empty, damaged or cannot be read.</summary>
    CommitMetadata,

    /// <summary>The log is readable but ends before the seq the head file says was committed.</summary>
    ShortOfHead,
}

/// <summary>
/// Damage in an audit directory: where it is (a log address with its segment file and offset, a commit
/// file, the head file), what is wrong in one plain sentence, and where the readable log ends: the last
/// good seq and hash (every intact record before the damage, also those FASTER's own recovery could not
/// reach) and the log address after it.
/// </summary>
internal sealed record LogDamage(LogDamageKind Kind, string Where, string Problem, long LastGoodSeq, byte[] LastGoodHash, long Address)
{
    /// <summary>Intact records found past the damage below the committed tail (for <c>export --salvage</c>).</summary>
    public IReadOnlyList<AuditLogScan.Entry> Salvaged { get; init; } = [];
}
