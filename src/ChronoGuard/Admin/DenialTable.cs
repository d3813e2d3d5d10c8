using ChronoGuard.Audit;

namespace ChronoGuard.Admin;

/// <summary>
/// Refused destinations, aggregated for <c>GET /v1/denials</c> (SPEC §9). Fed from the audit writer's
/// thread as each record is chained (<see cref="AuditWriter.OnChained"/>), never from the request path,
/// so the proxy pays nothing for it and every count is of a record in the chain.
/// <para>
/// Bound: <see cref="Capacity"/> entries (agent, host, port, decision, reason, dialed address,
/// enforced), each under 2 KiB with its key (the key's fields are the audit record's, at most 1.1 KiB),
/// so the table holds at most about 8 MiB whatever the traffic. A key is placed by its hash and looked
/// for in <see cref="Probe"/> neighbouring slots; when all of them hold other keys, the one seen least
/// recently is replaced, and the replacement is counted in <see cref="Evicted"/> (reported with every
/// answer), so a flood of distinct names costs the oldest rows, never memory, and says so.
/// </para>
/// </summary>
internal sealed class DenialTable
{
    public const int Capacity = 4096;

    public const int Probe = 8;

    private readonly DenialEntry?[] _slots = new DenialEntry?[Capacity];
    private long _evicted;

    /// <summary>Entries replaced by a newer key since start.</summary>
    public long Evicted => Interlocked.Read(ref _evicted);

    /// <summary>On the writer thread: counts a decision that is not an enforced ALLOW; ignores every other record.</summary>
    public void Observe(in AuditRecord record)
    {
        // An ALLOW is not a denial, enforced or not (observe mode's plain allows carry enforced=false too).
        if (record.Kind != AuditKind.Decision || record.Get(AuditText.Decision).SequenceEqual("ALLOW"u8))
        {
            return;
        }

        var start = (int)(DenialEntry.Hash(record) & (Capacity - 1));
        var victim = -1;
        var oldest = long.MaxValue;
        for (var i = 0; i < Probe; i++)
        {
            var slot = (start + i) & (Capacity - 1);
            var entry = Volatile.Read(ref _slots[slot]);
            if (entry is null)
            {
                Volatile.Write(ref _slots[slot], new DenialEntry(record));
                return;
            }

            if (entry.Matches(record))
            {
                entry.Seen(record.TimestampNs);
                return;
            }

            if (entry.LastNs < oldest)
            {
                oldest = entry.LastNs;
                victim = slot;
            }
        }

        Interlocked.Increment(ref _evicted);
        Volatile.Write(ref _slots[victim], new DenialEntry(record));
    }

    /// <summary>The entries last seen at or after <paramref name="sinceNs"/> (and of <paramref name="agent"/>, when given), most frequent first.</summary>
    public List<DenialEntry> Snapshot(long sinceNs, string? agent)
    {
        var list = new List<DenialEntry>();
        for (var i = 0; i < Capacity; i++)
        {
            if (Volatile.Read(ref _slots[i]) is { } e && e.LastNs >= sinceNs && (agent is null || e.AgentIs(agent)))
            {
                list.Add(e);
            }
        }

        list.Sort((a, b) => b.Count != a.Count ? b.Count.CompareTo(a.Count) : b.LastNs.CompareTo(a.LastNs));
        return list;
    }
}
