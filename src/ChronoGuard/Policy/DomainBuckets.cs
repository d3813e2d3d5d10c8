using System.Runtime.InteropServices;

namespace ChronoGuard.Policy;

/// <summary>
/// The <c>agent_domain</c> bucket sets of one agent under one policy, in a fixed table: at most
/// <see cref="Capacity"/> domains have a bucket of their own, so random subdomains cannot grow memory.
/// The table is 8-way set-associative by domain hash; a domain takes an empty slot or one whose bucket
/// has refilled completely (every TAT at or before now: dropping such a bucket is indistinguishable
/// from keeping it, because a new bucket starts full). A bucket that is still refilling is never
/// evicted, so spraying hosts cannot reset one's own draining bucket; when every way of a domain's
/// set is still refilling, the domain is charged to one overflow bucket set that all such domains of
/// this agent and policy share (stricter, never looser, than a bucket of its own). Lock-free and
/// allocation-free per request: slots are claimed with a CAS on the key; the table itself (128 KiB)
/// is allocated on the first request under the policy.
/// </summary>
internal sealed class DomainBuckets
{
    /// <summary>Domains with a bucket of their own, per agent and policy (documented in README's policy reference).</summary>
    public const int Capacity = 4096;

    private const int Ways = 8;
    private const int Sets = Capacity / Ways;
    private const int ClaimAttempts = 4;

    private readonly BucketState _overflow = new();
    private Slot[]? _slots;

    /// <summary>Domains that currently hold a slot (for tests and explain).</summary>
    public int Count
    {
        get
        {
            var n = 0;
            foreach (var s in Volatile.Read(ref _slots) ?? [])
            {
                n += s.Key == 0 ? 0 : 1;
            }

            return n;
        }
    }

    /// <summary>Takes one token from the domain's bucket set (its own, or the shared overflow set).</summary>
    public bool TryTake(RateLimits limits, ulong domainHash, long now, out long retryAfterSeconds)
    {
        var slots = Volatile.Read(ref _slots) ?? Allocate();
        var key = domainHash | 1; // 0 marks an empty slot
        var first = (int)((domainHash >> 32) % Sets) * Ways;
        for (var attempt = 0; attempt < ClaimAttempts; attempt++)
        {
            for (var i = first; i < first + Ways; i++)
            {
                ref var s = ref slots[i];
                if (Volatile.Read(ref s.Key) == key)
                {
                    return limits.TryTake(ref s.MinuteTat, ref s.HourTat, ref s.DayTat, now, out retryAfterSeconds);
                }
            }

            var lost = false;
            for (var i = first; i < first + Ways; i++)
            {
                ref var s = ref slots[i];
                var held = Volatile.Read(ref s.Key);
                if (held != 0 && !Refilled(ref s, now))
                {
                    continue;
                }

                if (Interlocked.CompareExchange(ref s.Key, key, held) == held)
                {
                    // A refilled bucket's TATs are all <= now, which a fresh bucket's 0 also is: nothing to reset.
                    return limits.TryTake(ref s.MinuteTat, ref s.HourTat, ref s.DayTat, now, out retryAfterSeconds);
                }

                lost = true;
                break;
            }

            if (!lost)
            {
                break;
            }
        }

        return limits.TryTake(_overflow, now, out retryAfterSeconds);
    }

    private static bool Refilled(ref Slot s, long now) =>
        Volatile.Read(ref s.MinuteTat) <= now && Volatile.Read(ref s.HourTat) <= now && Volatile.Read(ref s.DayTat) <= now;

    private Slot[] Allocate()
    {
        Interlocked.CompareExchange(ref _slots, new Slot[Capacity], null);
        return _slots!;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Slot
    {
        public ulong Key;
        public long MinuteTat;
        public long HourTat;
        public long DayTat;
    }
}
