namespace ChronoGuard.Approvals;

/// <summary>
/// One open approval (SPEC §9): an agent's requests to one host and port that nothing allowed or
/// blocked, waiting for an operator. Requests to the same destination while it is open join it, so an
/// agent retrying shows up once, and one approval or refusal settles them all.
/// </summary>
internal sealed class PendingApproval(string id, string agent, string host, int port, string method, string? source, DateTimeOffset created)
{
    public string Id { get; } = id;

    public string Agent { get; } = agent;

    /// <summary>Lower case, without a trailing dot: the key, and what a grant is matched against.</summary>
    public string Host { get; } = host;

    public int Port { get; } = port;

    /// <summary>What the first held request asked (<c>CONNECT</c>, <c>SOCKS</c>, <c>TRANSPARENT</c> or an HTTP method).</summary>
    public string Method { get; } = method;

    /// <summary>The first held request's client address.</summary>
    public string? Source { get; } = source;

    public DateTimeOffset Created { get; } = created;

    /// <summary>The held requests; guarded by the registry's lock.</summary>
    internal List<PendingApprovals.Waiter> Waiters { get; } = [];

    /// <summary>When the last held request stops waiting unless settled; guarded by the registry's lock.</summary>
    internal DateTimeOffset Expires { get; set; }
}
