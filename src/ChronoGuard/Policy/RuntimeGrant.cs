using System.Text;

namespace ChronoGuard.Policy;

/// <summary>
/// A grant made at run time through the admin API (SPEC §9): this agent may reach these domains until
/// it expires, where otherwise <c>defaultAction</c> would refuse it. Immutable; the name patterns are
/// kept as bytes so the decision path compares without allocating.
/// </summary>
internal sealed class RuntimeGrant
{
    private readonly byte[][] _exact;
    private readonly byte[][] _suffixes;

    /// <param name="domains">Normalized patterns (<see cref="DomainNames.TryNormalizePattern"/>): exact names and <c>*.</c> suffixes.</param>
    public RuntimeGrant(string id, string agent, string[] domains, DateTimeOffset expires, string reason, string actor, DateTimeOffset created)
    {
        Id = id;
        Agent = agent;
        Domains = domains;
        Expires = expires;
        Reason = reason;
        Actor = actor;
        Created = created;
        AuditReason = "grant:" + reason;
        var exact = new List<byte[]>();
        var suffixes = new List<byte[]>();
        foreach (var d in domains)
        {
            if (d.StartsWith("*.", StringComparison.Ordinal))
            {
                suffixes.Add(Encoding.ASCII.GetBytes(d[1..]));
            }
            else
            {
                exact.Add(Encoding.ASCII.GetBytes(d));
            }
        }

        _exact = [.. exact];
        _suffixes = [.. suffixes];
    }

    public string Id { get; }

    public string Agent { get; }

    public string[] Domains { get; }

    public DateTimeOffset Expires { get; }

    public string Reason { get; }

    /// <summary>The admin token's name that made it (SPEC §9: the actor).</summary>
    public string Actor { get; }

    public DateTimeOffset Created { get; }

    /// <summary>"grant:&lt;reason&gt;", as a policy-file grant's, built once.</summary>
    public string AuditReason { get; }

    /// <summary>Whether it covers this host (case-insensitive, one trailing dot ignored); <c>*.x</c> matches below x, not x itself.</summary>
    public bool Covers(ReadOnlySpan<byte> host)
    {
        if (host.Length > 0 && host[^1] == (byte)'.')
        {
            host = host[..^1];
        }

        foreach (var e in _exact)
        {
            if (System.Text.Ascii.EqualsIgnoreCase(host, e))
            {
                return true;
            }
        }

        foreach (var s in _suffixes)
        {
            if (host.Length > s.Length && System.Text.Ascii.EqualsIgnoreCase(host[^s.Length..], s))
            {
                return true;
            }
        }

        return false;
    }
}
