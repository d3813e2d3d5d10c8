namespace ChronoGuard.Policy;

/// <summary>The outcome of <see cref="CompiledPolicy.Decide"/>: what to answer and what to audit.</summary>
internal struct DecisionResult
{
    public Decision Decision;
    public int Status;

    /// <summary>A static string (see <see cref="Reasons"/>) or one precomputed at compile time.</summary>
    public string Reason;
    public string? Policy;
    public string? Rule;

    /// <summary>Seconds for <c>Retry-After</c>, or -1.</summary>
    public long RetryAfterSeconds;

    /// <summary>For TIME_RESTRICTED: when the window next opens.</summary>
    public DateTimeOffset? RetryAt;

    /// <summary>
    /// An allowed tunnel whose host matches an <c>inspect</c> pattern of the agent's policies (SPEC §7):
    /// TLS is terminated and each inner request is decided on its own. Never set on a refusal.
    /// </summary>
    public bool Inspect;

    /// <summary>
    /// The credential this decision is about (SPEC §7): injected when allowed, or the one whose
    /// placeholder, requirement, window or rate refused the request. Recorded by name.
    /// </summary>
    public CompiledCredential? Credential;

    public readonly bool IsAllow => Decision == Decision.Allow;

    public static DecisionResult Allow(string reason, string? policy = null, string? rule = null) =>
        new() { Decision = Decision.Allow, Status = 200, Reason = reason, Policy = policy, Rule = rule, RetryAfterSeconds = -1 };

    public static DecisionResult Refuse(Decision decision, int status, string reason, string? policy = null, string? rule = null, long retryAfter = -1) =>
        new() { Decision = decision, Status = status, Reason = reason, Policy = policy, Rule = rule, RetryAfterSeconds = retryAfter };
}
