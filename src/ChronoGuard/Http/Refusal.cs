namespace ChronoGuard.Http;

/// <summary>What a refusal response says (SPEC §4): status, decision, reason, audit sequence, retry hints.</summary>
internal readonly record struct Refusal(int Status, string Decision, string Reason)
{
    public long AuditSeq { get; init; } = -1;
    public long RetryAfterSeconds { get; init; } = -1;
    public DateTimeOffset? RetryAt { get; init; }
    public bool ChallengeBasic { get; init; }

    /// <summary>The connection goes on after this response (an inspected request refused by policy): no <c>Connection: close</c>.</summary>
    public bool KeepOpen { get; init; }
}
