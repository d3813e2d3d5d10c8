namespace ChronoGuard.Approvals;

/// <summary>How a held request's wait ended (SPEC §9).</summary>
internal enum ApprovalOutcome
{
    /// <summary>A grant that covers it is in force: decide it again.</summary>
    Approved,

    /// <summary>A reload changed what the policy says about it: decide it again (it may be held anew).</summary>
    Reconsidered,

    /// <summary>An operator refused it: <c>403 DENY approval_denied</c>.</summary>
    Denied,

    /// <summary>Nobody settled it within <c>Admin:AskTimeoutMs</c>: <c>403 DENY approval_timeout</c>.</summary>
    TimedOut,

    /// <summary>The sidecar is stopping: <c>503</c>, as drain answers everything it has not started.</summary>
    Draining,

    /// <summary>The client closed its connection while held: the request is dropped, never sent on later.</summary>
    ClientGone,

    /// <summary><c>Admin:MaxPending</c> approvals are open already: refused at once, never held.</summary>
    QueueFull,
}
