using System.Text.Json.Serialization;

namespace ChronoGuard.Stats;

/// <summary>The <c>/stats</c> document: the metrics of <c>/metrics</c> as one JSON object.</summary>
internal sealed class StatsDocument
{
    public required string Version { get; init; }

    public required long UptimeSeconds { get; init; }

    public required ConnectionStats Connections { get; init; }

    /// <summary>Agent id → decision name → count; "" is requests refused before an agent was known.</summary>
    public required Dictionary<string, Dictionary<string, long>> DecisionsByAgent { get; init; }

    /// <summary>Agent id → decision name → reason → count, for the pairs that occurred (reasons as in <c>/metrics</c>).</summary>
    public required Dictionary<string, Dictionary<string, Dictionary<string, long>>> DecisionReasonsByAgent { get; init; }

    public required TopDomainStats[] TopDomains { get; init; }

    public required DistinctDomainStats DistinctDomains { get; init; }

    /// <summary>Agent id → domains that agent reached for the first time in the last 5 minutes.</summary>
    public required Dictionary<string, long> NewDomains5m { get; init; }

    public required ByteStats Bytes { get; init; }

    public required AuditStats Audit { get; init; }

    public required PolicyStats Policy { get; init; }
}

internal sealed record ConnectionStats(long Active, long AcceptedTotal);

internal sealed record TopDomainStats(string Domain, long Estimate, long ErrorBound);

internal sealed record DistinctEstimate(long Estimate, double RelativeStandardError);

internal sealed record DistinctDomainStats(DistinctEstimate Total, Dictionary<string, DistinctEstimate> ByAgent);

internal sealed record ByteStats(long Up, long Down);

internal sealed record AuditHead(long Seq, string Hash);

internal sealed record AuditStats(bool Healthy, string Durability, long QueueDepth, long RecordsTotal, long BackpressureTotal, AuditHead Head);

internal sealed record PolicyStats(string? Path, string Sha256, bool Observe, long Version, long ReloadsOk, long ReloadsRejected);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true)]
[JsonSerializable(typeof(StatsDocument))]
internal sealed partial class StatsJsonContext : JsonSerializerContext;
