using System.Net;

namespace ChronoGuard.Resolution;

/// <summary>
/// Which names the DNS guard answered with which addresses, per agent, until when (SPEC §10): the
/// guard writes it, a transparent front end reads it to believe a name only for an address it
/// resolves to (<see cref="WasAnswered"/>) and to name a connection whose bytes carry none
/// (<see cref="TryGetName"/>).
/// <para>
/// Memory is fixed at construction: a table of <c>capacity</c> entries (8-way set-associative, keyed by
/// agent and address), each about 64 bytes plus the name it points to (a string of at most 253
/// characters, shared by every address of one answer): the default 16,384 entries are 1 MiB of table
/// and at most 8.5 MiB of names, whatever clients ask. A full set gives up the entry that expires
/// first, so under pressure the memory forgets early (a connection is then refused, never let through).
/// </para>
/// <para>
/// Each set has its own spin lock, held for a few loads and stores (as <c>UnauthenticatedLimiter</c>);
/// reads and refreshes allocate nothing.
/// </para>
/// </summary>
internal sealed class AnswerMemory
{
    public const int Ways = 8;
    public const int DefaultCapacity = 16_384;

    private readonly Entry[] _entries;
    private readonly SetLocks _locks;
    private readonly int _setMask;
    private readonly ulong _seed;

    public AnswerMemory(int capacity = DefaultCapacity)
    {
        var sets = capacity / Ways;
        if (sets < 1 || (sets & (sets - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(capacity), "a power of two, at least 8");
        }

        _setMask = sets - 1;
        _entries = new Entry[sets * Ways];
        _locks = new SetLocks(sets);
        // A seed per process, so which addresses share a set cannot be planned from outside.
        _seed = (ulong)Random.Shared.NextInt64() | 1;
    }

    public int Capacity => _entries.Length;

    /// <summary>
    /// <paramref name="name"/> (as the guard answered it) resolved to <paramref name="address"/> for
    /// <paramref name="agentId"/> until <paramref name="expiresMs"/>; remembering it again only moves
    /// the expiry later (no allocation).
    /// </summary>
    public void Remember(string agentId, string name, UInt128 address, long expiresMs, long nowMs)
    {
        var set = SetOf(agentId, address);
        _locks.Enter(set);
        try
        {
            var first = set * Ways;
            var victim = first;
            var victimRank = long.MaxValue;
            for (var w = first; w < first + Ways; w++)
            {
                ref var e = ref _entries[w];
                if (e.Name is not null && e.Address == address && string.Equals(e.Agent, agentId, StringComparison.Ordinal)
                    && string.Equals(e.Name, name, StringComparison.OrdinalIgnoreCase))
                {
                    e.ExpiresMs = Math.Max(e.ExpiresMs, expiresMs);
                    e.AnsweredMs = nowMs;
                    return;
                }

                // An empty entry first, then an expired one, else the one that expires first.
                var rank = e.Name is null ? long.MinValue : e.ExpiresMs <= nowMs ? long.MinValue + 1 : e.ExpiresMs;
                if (rank < victimRank)
                {
                    victim = w;
                    victimRank = rank;
                }
            }

            ref var v = ref _entries[victim];
            v.Agent = agentId;
            v.Name = name;
            v.Address = address;
            v.ExpiresMs = expiresMs;
            v.AnsweredMs = nowMs;
        }
        finally
        {
            _locks.Exit(set);
        }
    }

    /// <summary>The name most recently answered to <paramref name="agentId"/> with <paramref name="address"/>, still within its TTL.</summary>
    public bool TryGetName(string agentId, IPAddress address, long nowMs, out string name)
    {
        var key = AddressKey.Of(address);
        var set = SetOf(agentId, key);
        name = null!;
        long latest = long.MinValue;
        _locks.Enter(set);
        try
        {
            var first = set * Ways;
            for (var w = first; w < first + Ways; w++)
            {
                ref var e = ref _entries[w];
                if (e.Name is not null && e.Address == key && e.ExpiresMs > nowMs && e.AnsweredMs > latest
                    && string.Equals(e.Agent, agentId, StringComparison.Ordinal))
                {
                    latest = e.AnsweredMs;
                    name = e.Name;
                }
            }
        }
        finally
        {
            _locks.Exit(set);
        }

        return name is not null;
    }

    /// <summary>Whether <paramref name="name"/> (any case, one trailing dot ignored) was answered to <paramref name="agentId"/> with <paramref name="address"/> and its TTL has not run out.</summary>
    public bool WasAnswered(string agentId, string name, IPAddress address, long nowMs)
    {
        var wanted = name.AsSpan();
        if (wanted.EndsWith('.'))
        {
            wanted = wanted[..^1];
        }

        var key = AddressKey.Of(address);
        var set = SetOf(agentId, key);
        _locks.Enter(set);
        try
        {
            var first = set * Ways;
            for (var w = first; w < first + Ways; w++)
            {
                ref var e = ref _entries[w];
                if (e.Name is not null && e.Address == key && e.ExpiresMs > nowMs
                    && string.Equals(e.Agent, agentId, StringComparison.Ordinal) && wanted.Equals(e.Name, StringComparison.OrdinalIgnoreCase))
                {
                    return true;
                }
            }
        }
        finally
        {
            _locks.Exit(set);
        }

        return false;
    }

    private int SetOf(string agentId, UInt128 address)
    {
        var h = ((ulong)address ^ _seed) * 0x9E3779B97F4A7C15UL;
        h ^= (ulong)(address >> 64) * 0xC2B2AE3D27D4EB4FUL;
        h ^= (ulong)(uint)agentId.GetHashCode(StringComparison.Ordinal) * 0x165667B19E3779F9UL;
        return (int)((h ^ (h >> 29) ^ (h >> 47)) & (ulong)_setMask);
    }

    private struct Entry
    {
        public string? Agent;
        public string? Name;
        public UInt128 Address;
        public long ExpiresMs;
        public long AnsweredMs;
    }
}
