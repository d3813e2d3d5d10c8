namespace ChronoGuard.Audit;

/// <summary>A record read back from the log or an export, with its chain hashes.</summary>
internal sealed class AuditEntry
{
    public long Seq { get; init; }

    public long TimestampNs { get; init; }

    public AuditKind Kind { get; init; }

    public string Agent { get; init; } = string.Empty;

    public string SourceIp { get; init; } = string.Empty;

    public string Method { get; init; } = string.Empty;

    public string Host { get; init; } = string.Empty;

    public string Path { get; init; } = string.Empty;

    public string Decision { get; init; } = string.Empty;

    public string Reason { get; init; } = string.Empty;

    public string Policy { get; init; } = string.Empty;

    public string Rule { get; init; } = string.Empty;

    public int Port { get; init; }

    public int Status { get; init; }

    public long ConnectionId { get; init; }

    public long BytesUp { get; init; }

    public long BytesDown { get; init; }

    public long DurationMs { get; init; }

    public byte[] PrevHash { get; set; } = new byte[32];

    public byte[] Hash { get; set; } = new byte[32];

    /// <summary>Text fields in canonical order.</summary>
    public string[] Texts => [Agent, SourceIp, Method, Host, Path, Decision, Reason, Policy, Rule];

    public DateTimeOffset Time => DateTimeOffset.UnixEpoch.AddTicks(TimestampNs / 100);

    public static string KindName(AuditKind kind) => kind switch
    {
        AuditKind.Decision => "decision",
        AuditKind.Close => "close",
        _ => "system",
    };
}
