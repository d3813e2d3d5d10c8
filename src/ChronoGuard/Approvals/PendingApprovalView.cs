namespace ChronoGuard.Approvals;

/// <summary>A copy of an open approval for <c>GET /v1/pending</c>, taken under the registry's lock.</summary>
internal readonly record struct PendingApprovalView(
    string Id, string Agent, string Host, int Port, string Method, string? Source, DateTimeOffset Created, DateTimeOffset Expires, int Held);
