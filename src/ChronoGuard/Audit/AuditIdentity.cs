namespace ChronoGuard.Audit;

/// <summary>
/// How a decision's agent was identified (format 2, one byte in the canonical encoding). Listener is
/// reserved for SPEC §8 so that listener-bound identity needs no new format version.
/// </summary>
internal enum AuditIdentity : byte
{
    /// <summary>Records that identify no one: close, system, and refusals before a request was parsed.</summary>
    None = 0,

    /// <summary>The agent proved itself with valid proxy credentials.</summary>
    Credential = 1,

    /// <summary>No valid credentials: the agent field, when set, is only what the client claimed.</summary>
    Unauthenticated = 2,

    /// <summary>The agent a listener is bound to (SPEC §8).</summary>
    Listener = 3,

    /// <summary>The agent of a transparent listener: the connection was redirected to it by the pod's rules (SPEC §10; format 3).</summary>
    Transparent = 4,
}
