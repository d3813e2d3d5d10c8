namespace ChronoGuard.Audit;

/// <summary>What the request path may do with a request, given the writer's state (SPEC §5).</summary>
internal enum AuditAdmission
{
    /// <summary>The writer is healthy: record and, in commit-before-forward, wait for durability.</summary>
    Open,

    /// <summary>The writer has faulted and nothing may be forwarded that cannot be recorded: 503 audit_unavailable.</summary>
    Refuse,

    /// <summary>The writer has faulted and <c>Audit:OnFailure=forward</c>: forward; the record waits or is counted as unrecorded.</summary>
    ForwardUnrecorded,
}
