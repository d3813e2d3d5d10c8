namespace ChronoGuard.Policy;

/// <summary>Audit reasons as static strings, so the decision path never formats one.</summary>
internal static class Reasons
{
    public const string Allowed = "allowed";
    public const string ObserveMode = "observe_mode";
    public const string Unauthenticated = "unauthenticated";

    /// <summary>No credentials at all: the 407 challenge a client answers (apart from <see cref="BadCredentials"/>).</summary>
    public const string AuthRequired = "auth_required";
    public const string BadCredentials = "bad_credentials";
    public const string Suspended = "agent_suspended";
    public const string PortNotAllowed = "port_not_allowed";
    public const string PrivateDestination = "private_destination";
    public const string MetadataDestination = "metadata_destination";
    public const string TunnelLimit = "tunnel_limit";
    public const string EgressBudget = "egress_budget";
    public const string RuleDeny = "rule_deny";
    public const string RuleAllow = "rule_allow";
    public const string DomainBlocked = "domain_blocked";
    public const string OutsideWindow = "outside_time_window";
    public const string RateLimit = "rate_limit";
    public const string FanOut = "new_domain_quota";
    public const string DefaultAllow = "default_allow";
    public const string DefaultDeny = "default_deny";

    /// <summary>Nothing allowed or blocked it and the policy says <c>ask</c> (SPEC §9): held for approval (enforce), or let through (observe).</summary>
    public const string ApprovalRequired = "approval_required";

    /// <summary>An operator refused the held request (SPEC §9).</summary>
    public const string ApprovalDenied = "approval_denied";

    /// <summary>Nobody settled the held request within <c>Admin:AskTimeoutMs</c> (SPEC §9).</summary>
    public const string ApprovalTimeout = "approval_timeout";

    /// <summary>The held request could not wait: <c>Admin:MaxPending</c> requests are held already.</summary>
    public const string ApprovalQueueFull = "approval_queue_full";
    public const string SniMismatch = "sni_mismatch";
    public const string SniMissing = "sni_missing";

    /// <summary>The ClientHello carries encrypted_client_hello: the SNI is only the outer name.</summary>
    public const string SniEch = "sni_ech";
    public const string NotTls = "not_tls";
    public const string PolicyRevoked = "policy_revoked";
    public const string WindowClosed = "window_closed";

    /// <summary>A credential's placeholder headed somewhere not bound to it (SPEC §7).</summary>
    public const string CredentialMisdirected = "credential_misdirected";

    /// <summary>A request to a <c>require</c> credential's domains without its placeholder.</summary>
    public const string CredentialRequired = "credential_required";

    /// <summary>A placeholder outside its credential's <c>timeRestrictions</c>.</summary>
    public const string CredentialWindow = "credential_window";

    /// <summary>Past a credential's <c>rateLimits</c> (injections per agent).</summary>
    public const string CredentialRateLimit = "credential_rate_limit";
}
