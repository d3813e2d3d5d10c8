using ChronoGuard.Analytics;
using ChronoGuard.Policy;

namespace ChronoGuard.Metrics;

/// <summary>
/// Process-wide counters and histograms the gate and the writer update on their paths (Interlocked
/// only) and the stats endpoint reads. Per-agent counters live in <see cref="AgentMetrics"/>.
/// </summary>
internal sealed class ProxyMetrics
{
    private readonly AgentTable<AgentMetrics> _agents;
    private long _bytesUp;
    private long _bytesDown;
    private long _reloadsOk;
    private long _reloadsRejected;
    private long _unauthenticatedSuppressed;

    /// <param name="reasons">The values the decisions' reason label can take (the gate's <c>DecisionReasons.Labels</c>).</param>
    public ProxyMetrics(LabelValues reasons)
    {
        Reasons = reasons;

        // Index 0 is no agent, as in the sketches; agents count from 1. A table grows by copying, never
        // replaces an element, so a counter once handed out is the agent's for the life of the process.
        _agents = new AgentTable<AgentMetrics>(1, () => new AgentMetrics(reasons));
        Unauthenticated = _agents.Get(0);
    }

    public LabelValues Reasons { get; }

    /// <summary>Requests per domain (Count-Min) and the busiest domains (top 20).</summary>
    public DomainStats Domains { get; } = new();

    /// <summary>Distinct domains overall and per agent index (HyperLogLog).</summary>
    public DistinctDomains Distinct { get; } = new(64);

    /// <summary>Per agent index, domains first reached in the last five minutes.</summary>
    public NewDomainWindow NewDomains { get; } = new(64);

    /// <summary>
    /// Feeds one request's destination to the sketches: the host lowercased without a trailing dot,
    /// hashed once. <paramref name="agentIndex"/> is 0 when no agent was authenticated.
    /// </summary>
    public void RecordDomain(ReadOnlySpan<byte> host, int agentIndex, long nowMinute)
    {
        if (!host.IsEmpty && host[^1] == (byte)'.')
        {
            host = host[..^1];
        }

        if (host.IsEmpty || host.Length > 255)
        {
            return;
        }

        Span<byte> lower = stackalloc byte[host.Length];
        System.Text.Ascii.ToLower(host, lower, out _);
        var hash = Domains.Record(lower);
        Distinct.Record(agentIndex, hash);
        NewDomains.Record(agentIndex, hash, nowMinute);
    }

    /// <summary>Requests refused before an agent was known (no or bad credentials, malformed requests).</summary>
    public AgentMetrics Unauthenticated { get; }

    /// <summary>
    /// One agent's decision counters by its index (<see cref="AgentRuntime.Index"/>, kept across reloads),
    /// created with the table grown the first time an index is seen.
    /// </summary>
    public AgentMetrics ForAgent(int agentIndex) => _agents.Get(agentIndex);

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

    /// <summary>Unauthenticated refusals counted into a per-second system record instead of recorded one by one.</summary>
    public long UnauthenticatedSuppressed => Volatile.Read(ref _unauthenticatedSuppressed);

    public void CountSuppressed() => Interlocked.Increment(ref _unauthenticatedSuppressed);

    public void PolicyReload(bool ok) => Interlocked.Increment(ref ok ? ref _reloadsOk : ref _reloadsRejected);
}
