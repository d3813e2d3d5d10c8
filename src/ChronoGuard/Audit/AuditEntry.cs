using System.Globalization;

namespace ChronoGuard.Audit;

/// <summary>A record read back from the log or an export, with its chain hashes.</summary>
internal sealed class AuditEntry
{
    /// <summary>The canonical encoding's version (1, 2 or 3): which fields exist and are hashed.</summary>
    public int Format { get; init; } = AuditCodec.FormatVersion;

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

    /// <summary>Format 2: the upstream address dialed or refused.</summary>
    public string DialedIp { get; init; } = string.Empty;

    /// <summary>Format 3: the credential the decision is about (SPEC §7), by name.</summary>
    public string Credential { get; init; } = string.Empty;

    public int Port { get; init; }

    public int Status { get; init; }

    public long ConnectionId { get; init; }

    public long BytesUp { get; init; }

    public long BytesDown { get; init; }

    public long DurationMs { get; init; }

    /// <summary>Format 2: false when observe mode let a refusal through.</summary>
    public bool Enforced { get; init; } = true;

    /// <summary>Format 2: how the agent was identified.</summary>
    public AuditIdentity Identity { get; init; }

    public byte[] PrevHash { get; set; } = new byte[32];

    public byte[] Hash { get; set; } = new byte[32];

    /// <summary>Text fields in canonical order for this record's format.</summary>
    public string[] Texts => Format switch
    {
        AuditCodec.FormatVersion1 => [Agent, SourceIp, Method, Host, Path, Decision, Reason, Policy, Rule],
        AuditCodec.FormatVersion => [Agent, SourceIp, Method, Host, Path, Decision, Reason, Policy, Rule, DialedIp],
        _ => [Agent, SourceIp, Method, Host, Path, Decision, Reason, Policy, Rule, DialedIp, Credential],
    };

    /// <summary>
    /// <c>ts</c> as the export's <c>time</c>: UTC, seven fraction digits, the nanoseconds truncated to
    /// 100 ns; null when ts lies outside the years 0001-9999 (then an export has no <c>time</c>).
    /// </summary>
    public string? TimeText => RenderTime(TimestampNs);

    public DateTimeOffset Time => TimeText is null ? (TimestampNs < 0 ? DateTimeOffset.MinValue : DateTimeOffset.MaxValue) : DateTimeOffset.UnixEpoch.AddTicks(TimestampNs / 100);

    public static string? RenderTime(long ts)
    {
        var ticks = ts / 100;
        if (ticks < DateTimeOffset.MinValue.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks || ticks > DateTimeOffset.MaxValue.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks)
        {
            return null;
        }

        return DateTimeOffset.UnixEpoch.AddTicks(ticks).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture);
    }

    public static string KindName(AuditKind kind) => kind switch
    {
        AuditKind.Decision => "decision",
        AuditKind.Close => "close",
        _ => "system",
    };

    public static string IdentityName(AuditIdentity identity) => identity switch
    {
        AuditIdentity.Credential => "credential",
        AuditIdentity.Unauthenticated => "unauthenticated",
        AuditIdentity.Listener => "listener",
        AuditIdentity.Transparent => "transparent",
        _ => string.Empty,
    };
}
