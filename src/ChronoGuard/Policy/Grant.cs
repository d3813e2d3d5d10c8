namespace ChronoGuard.Policy;

/// <summary>A time-boxed exception: this agent may reach these domains until it expires.</summary>
internal sealed class Grant
{
    public required string Agent { get; init; }

    public required DateTimeOffset Expires { get; init; }

    /// <summary>"grant:&lt;reason&gt;", built once so the decision path does not format it.</summary>
    public required string AuditReason { get; init; }
}
