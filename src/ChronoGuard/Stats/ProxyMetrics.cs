namespace ChronoGuard.Stats;

/// <summary>
/// Process-wide counters and histograms the gate and the writer update on their paths (Interlocked
/// only) and the stats endpoint reads. Per-agent counters live in <see cref="AgentMetrics"/>.
/// </summary>
internal sealed class ProxyMetrics
{
    private long _bytesUp;
    private long _bytesDown;
    private long _reloadsOk;
    private long _reloadsRejected;

    /// <summary>Requests refused before an agent was known (no or bad credentials, malformed requests).</summary>
    public AgentMetrics Unauthenticated { get; } = new();

    public LatencyHistogram DecisionDuration { get; } = new(
        "chronoguard_decision_duration_seconds",
        "Time to decide one request: authentication, policy, windows, rate limits (seconds).",
        LatencyHistogram.Micro);

    public LatencyHistogram UpstreamConnect { get; } = new(
        "chronoguard_upstream_connect_duration_seconds",
        "DNS resolution plus TCP connect to the upstream, for connections that succeeded (seconds).",
        LatencyHistogram.Milli);

    public LatencyHistogram AuditCommit { get; } = new(
        "chronoguard_audit_commit_duration_seconds",
        "One group commit of the audit log to its device (seconds).",
        LatencyHistogram.Milli);

    public long BytesUp => Volatile.Read(ref _bytesUp);

    public long BytesDown => Volatile.Read(ref _bytesDown);

    public long ReloadsOk => Volatile.Read(ref _reloadsOk);

    public long ReloadsRejected => Volatile.Read(ref _reloadsRejected);

    /// <summary>Bytes of a finished connection or tunnel (counted when it closes).</summary>
    public void AddBytes(long up, long down)
    {
        Interlocked.Add(ref _bytesUp, up);
        Interlocked.Add(ref _bytesDown, down);
    }

    public void PolicyReload(bool ok) => Interlocked.Increment(ref ok ? ref _reloadsOk : ref _reloadsRejected);
}
