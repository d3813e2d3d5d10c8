namespace ChronoGuard.Policy;

/// <summary>The outcome of one request's decision (SPEC §4); <see cref="DecisionNames"/> gives the wire names.</summary>
internal enum Decision : byte
{
    /// <summary>Forwarded.</summary>
    Allow = 0,

    /// <summary>Identity failure: unauthenticated (407) or suspended agent (403), and protocol errors.</summary>
    Deny = 1,

    /// <summary>Network guard or a blocked domain (403).</summary>
    Block = 2,

    /// <summary>A rule with action <c>deny</c> matched (403).</summary>
    PolicyViolation = 3,

    /// <summary>Outside the policy's time window (403).</summary>
    TimeRestricted = 4,

    /// <summary>A bucket, tunnel, egress or fan-out budget is spent (429).</summary>
    RateLimited = 5,
}
