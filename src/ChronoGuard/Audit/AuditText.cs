namespace ChronoGuard.Audit;

/// <summary>The text fields of a record, in canonical order, with the longest each may be (bytes, UTF-8).</summary>
internal enum AuditText
{
    Agent,
    SourceIp,
    Method,
    Host,
    Path,
    Decision,
    Reason,
    Policy,
    Rule,

    /// <summary>Format 2: the upstream address dialed or refused ("" when none).</summary>
    DialedIp,

    /// <summary>Format 3: the credential injected, or whose placeholder or requirement refused the request (SPEC §7); its name, never the secret.</summary>
    Credential,
}
