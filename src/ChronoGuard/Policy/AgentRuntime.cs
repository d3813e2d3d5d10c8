using System.Collections.Concurrent;

namespace ChronoGuard.Policy;

/// <summary>
/// What an agent has used: open tunnels, egress bytes today, domains seen this hour, rate buckets.
/// Keyed by agent id in the engine and carried across reloads, so a reload neither refills an
/// agent's buckets nor forgets its open tunnels.
/// </summary>
internal sealed class AgentRuntime
{
    private int _openTunnels;
    private EgressDay? _egress;
    private FanOutHour? _fanOut;

    public AgentRuntime(string id, int index)
    {
        Id = id;
        Index = index;
    }

    public string Id { get; }

    /// <summary>Stable for the life of the process (kept across reloads), from 1: the agent's slot in the metrics' sketches and counters (0 is no agent).</summary>
    public int Index { get; }

    public int OpenTunnels => Volatile.Read(ref _openTunnels);

    /// <summary>Agent-scoped bucket sets, one per policy name.</summary>
    public ConcurrentDictionary<string, BucketState> Buckets { get; } = new(StringComparer.Ordinal);

    /// <summary>Agent × domain bucket tables, one per policy name (bounded: see <see cref="Policy.DomainBuckets"/>).</summary>
    public ConcurrentDictionary<string, DomainBuckets> DomainBuckets { get; } = new(StringComparer.Ordinal);

    /// <summary>Injection buckets, one per credential name (SPEC §7 <c>rateLimits</c>: injections per agent).</summary>
    public ConcurrentDictionary<string, BucketState> CredentialBuckets { get; } = new(StringComparer.Ordinal);

    public bool TryOpenTunnel(int max)
    {
        if (Interlocked.Increment(ref _openTunnels) > max)
        {
            Interlocked.Decrement(ref _openTunnels);
            return false;
        }

        return true;
    }

    public void CloseTunnel() => Interlocked.Decrement(ref _openTunnels);

    public long EgressToday(long day)
    {
        var e = Volatile.Read(ref _egress);
        return e is not null && e.Day == day ? Volatile.Read(ref e.Bytes) : 0;
    }

    /// <summary>Adds bytes sent upstream today; returns the day's total.</summary>
    public long AddEgress(long day, long bytes)
    {
        while (true)
        {
            var e = Volatile.Read(ref _egress);
            if (e is not null && e.Day == day)
            {
                return Interlocked.Add(ref e.Bytes, bytes);
            }

            // A new day: one allocation per agent per day.
            var fresh = new EgressDay(day);
            if (Interlocked.CompareExchange(ref _egress, fresh, e) == e)
            {
                return Interlocked.Add(ref fresh.Bytes, bytes);
            }
        }
    }

    /// <summary>
    /// Counts a domain against the hour's quota of new domains. True when it was seen this hour or
    /// fits in the quota; false when it would be one new domain too many (then it is not recorded, so
    /// a later retry is judged afresh).
    /// </summary>
    public bool TryNoteDomain(long hour, ulong domainHash, int quota)
    {
        var f = Volatile.Read(ref _fanOut);
        if (f is null || f.Hour != hour)
        {
            var fresh = new FanOutHour(hour, quota);
            f = Interlocked.CompareExchange(ref _fanOut, fresh, f) == f ? fresh : Volatile.Read(ref _fanOut)!;
        }

        return f.TryNote(domainHash, quota);
    }

    public int NewDomainsThisHour(long hour)
    {
        var f = Volatile.Read(ref _fanOut);
        return f is not null && f.Hour == hour ? f.Count : 0;
    }

    private sealed class EgressDay(long day)
    {
        public readonly long Day = day;
        public long Bytes;
    }
}
