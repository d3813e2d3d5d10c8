namespace ChronoGuard.Audit;

/// <summary>The <c>Audit</c> configuration section (SPEC §3, §5).</summary>
internal sealed class AuditOptions
{
    /// <summary>Where the FASTER log lives.</summary>
    public string Directory { get; set; } = "./chronoguard-audit";

    /// <summary><c>batched</c> (commit at least every CommitIntervalMs) or <c>commit-before-forward</c>.</summary>
    public string Durability { get; set; } = "batched";

    /// <summary>Longest time a record waits for its commit in batched mode.</summary>
    public int CommitIntervalMs { get; set; } = 5;

    /// <summary>
    /// Records the ring holds before appenders are held back (a power of two is used). Each slot is a
    /// 1.4 KiB record that stays resident once used; 4,096 slots are ~4 ms of the writer's throughput.
    /// </summary>
    public int QueueCapacity { get; set; } = 4096;

    /// <summary>A file whose bytes key HMAC-SHA256 for the chain; plain SHA-256 when unset.</summary>
    public string? HmacKeyFile { get; set; }

    /// <summary>FASTER segment size as a power of two (retention drops whole segments).</summary>
    public int SegmentSizeBits { get; set; } = 26;

    /// <summary>
    /// Whole segments kept, the one being written included; older ones are dropped (0 keeps everything).
    /// The first kept record's prevHash becomes the anchor that <c>verify</c> starts from.
    /// </summary>
    public int RetainSegments { get; set; }

    /// <summary>
    /// Most bytes the log's segments may use; past it whole oldest segments are dropped (named in a
    /// chained <c>system</c> record, <c>reason=retention</c>). Unset: half of the filesystem that holds
    /// <see cref="Directory"/>, measured at start; 0: unbounded. At least two segments.
    /// </summary>
    public long? MaxBytes { get; set; }

    /// <summary>
    /// What a faulted writer means for requests in <c>batched</c> mode: <c>refuse</c> (503
    /// audit_unavailable: nothing is forwarded that cannot be recorded) or <c>forward</c> (keep serving,
    /// count the unrecorded requests and write the count into the chain once the writer recovers).
    /// <c>commit-before-forward</c> always refuses.
    /// </summary>
    public string OnFailure { get; set; } = "refuse";

    /// <summary>
    /// How long a due commit may take before the writer counts as faulted (readiness drops, waiters
    /// are answered "not durable"). Generous: an fsync on a busy disk can take a second.
    /// </summary>
    public int CommitTimeoutMs { get; set; } = 5000;

    /// <summary>
    /// How long an idle writer sleeps when nothing wakes it (housekeeping cadence). Not configuration:
    /// a test lengthens it so that a lost wake-up turns into a stall the watchdog must report.
    /// </summary>
    internal int IdleWaitMs { get; set; } = 1000;

    /// <summary>Most records the writer chains before it commits (group commit size).</summary>
    public int MaxBatch { get; set; } = 1024;

    /// <summary>ECDSA P-256 private key (PEM) that signs checkpoints; none are written when unset.</summary>
    public string? SigningKeyFile { get; set; }

    /// <summary>How often the committed head is signed into checkpoints.jsonl (and always at stop).</summary>
    public int CheckpointIntervalMs { get; set; } = 10_000;

    /// <summary>
    /// Unauthenticated refusals (407, and refusals before a request could be parsed) recorded one by
    /// one per source and second; past it they are counted into one <c>system</c> record per source and
    /// second (<c>reason=unauthenticated_suppressed</c>), so a client without credentials cannot flood
    /// the log. 0 = no limit: every refusal is its own record.
    /// </summary>
    public int UnauthenticatedPerSecond { get; set; } = 20;
}
