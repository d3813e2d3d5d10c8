namespace ChronoGuard.Policy;

/// <summary>
/// The runtime grants in force (SPEC §9), shared by every compiled policy of one engine so a reload
/// keeps them. Writers (the admin API, one at a time) publish a new array; the decision path reads
/// the array once and scans it, with no lock and no allocation, and only when <c>defaultAction</c>
/// would refuse: a runtime grant lifts nothing else (never a block, a rule or a credential requirement).
/// </summary>
internal sealed class RuntimeGrantTable
{
    private RuntimeGrant[] _grants = [];

    public RuntimeGrant[] Current => Volatile.Read(ref _grants);

    public void Publish(RuntimeGrant[] grants) => Volatile.Write(ref _grants, grants);

    /// <summary>The first unexpired grant for this agent that covers the host, or null.</summary>
    public RuntimeGrant? Find(string agent, ReadOnlySpan<byte> host, DateTimeOffset now)
    {
        foreach (var g in Current)
        {
            if (g.Expires > now && string.Equals(g.Agent, agent, StringComparison.Ordinal) && g.Covers(host))
            {
                return g;
            }
        }

        return null;
    }
}
