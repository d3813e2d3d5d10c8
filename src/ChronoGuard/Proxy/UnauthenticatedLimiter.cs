using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace ChronoGuard.Proxy;

/// <summary>
/// Bounds the records unauthenticated refusals make (SPEC §5): per source address and second, the
/// first <c>perSecond</c> are recorded one by one, the rest only counted, and each count is handed out
/// once (<see cref="SuppressedRefusals"/>) to become one chained <c>system</c> record: when that source's
/// next second begins, when its entry is reused, or by <see cref="Drain"/> (the heartbeat, and stop).
/// Memory is fixed: a 4-way set-associative table keyed by the address, so no client can grow it.
/// Sources that find their set full of other sources active in the same second share one overflow
/// entry (one budget for them all: stricter, never looser). Each set has its own spin lock (taken for
/// a few loads and stores, never across a record write), so there is no global lock; the only shared
/// counter is touched once per source and second that suppresses anything.
/// </summary>
internal sealed class UnauthenticatedLimiter
{
    public const int Ways = 4;

    /// <summary>The <c>reason</c> of the system record that carries a count.</summary>
    public const string Reason = "unauthenticated_suppressed";

    private readonly Entry[] _entries;
    private readonly SetLocks _locks;
    private readonly int _setMask;
    private readonly int _overflow;
    private readonly ulong _seed;
    private int _pending;

    public UnauthenticatedLimiter(int perSecond, int sets = 1024)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(perSecond, 1);
        if (sets < 1 || (sets & (sets - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(sets), "a power of two");
        }

        PerSecond = perSecond;
        _setMask = sets - 1;
        _overflow = sets;
        _entries = new Entry[(sets * Ways) + 1];
        _locks = new SetLocks(sets + 1);
        // A seed per process, so which sources share a set cannot be planned from outside.
        _seed = (ulong)Random.Shared.NextInt64() | 1;
    }

    public int PerSecond { get; }

    /// <summary>Whether any count is waiting to be recorded (a cheap check before <see cref="Drain"/>).</summary>
    public bool HasPending => Volatile.Read(ref _pending) > 0;

    /// <summary>
    /// One unauthenticated refusal from <paramref name="source"/> in <paramref name="second"/>: true when
    /// it is to be recorded one by one, false when it was counted. <paramref name="flushed"/> is an
    /// earlier count this call closed (Count 0 when none): the caller records it.
    /// </summary>
    public bool TryAdmit(IPAddress? source, long second, string? host, out SuppressedRefusals flushed)
    {
        flushed = default;
        var key = KeyOf(source);
        var set = (int)(Mix(key) & (ulong)_setMask);
        _locks.Enter(set);
        try
        {
            var first = set * Ways;
            var free = -1;
            var stale = -1;
            for (var w = first; w < first + Ways; w++)
            {
                ref var e = ref _entries[w];
                if (!e.Used)
                {
                    free = free < 0 ? w : free;
                }
                else if (e.Key == key)
                {
                    return Count(ref e, key, source, second, host, overflow: false, ref flushed);
                }
                else if (e.Second < second && (stale < 0 || (_entries[stale].Suppressed > 0 && e.Suppressed == 0)))
                {
                    // Prefer a stale entry with nothing pending: reusing it closes no count early.
                    stale = w;
                }
            }

            var slot = free >= 0 ? free : stale;
            if (slot >= 0)
            {
                return Count(ref _entries[slot], key, source, second, host, overflow: false, ref flushed);
            }
        }
        finally
        {
            _locks.Exit(set);
        }

        _locks.Enter(_overflow);
        try
        {
            return Count(ref _entries[^1], default, source, second, host, overflow: true, ref flushed);
        }
        finally
        {
            _locks.Exit(_overflow);
        }
    }

    /// <summary>
    /// Hands out every count of a second before <paramref name="beforeSecond"/> (long.MaxValue at stop:
    /// all of them, the current second's too; refusals counted after that are handed out later).
    /// </summary>
    public void Drain(long beforeSecond, List<SuppressedRefusals> into)
    {
        if (!HasPending)
        {
            return;
        }

        for (var set = 0; set <= _overflow; set++)
        {
            _locks.Enter(set);
            try
            {
                var first = set * Ways;
                var end = set == _overflow ? _entries.Length : first + Ways;
                for (var w = first; w < end; w++)
                {
                    ref var e = ref _entries[w];
                    if (e.Suppressed > 0 && e.Second < beforeSecond)
                    {
                        into.Add(Take(ref e, set == _overflow));
                    }
                }
            }
            finally
            {
                _locks.Exit(set);
            }
        }
    }

    private bool Count(ref Entry e, UInt128 key, IPAddress? source, long second, string? host, bool overflow, ref SuppressedRefusals flushed)
    {
        if (!e.Used || e.Key != key || e.Second != second)
        {
            if (e.Suppressed > 0)
            {
                flushed = Take(ref e, overflow);
            }

            e.Used = true;
            e.Key = key;
            e.Source = source;
            e.Second = second;
            e.Admitted = 0;
        }

        if (e.Admitted < PerSecond)
        {
            e.Admitted++;
            return true;
        }

        if (e.Suppressed++ == 0)
        {
            e.FirstHost = host;
            Interlocked.Increment(ref _pending);
        }

        return false;
    }

    private SuppressedRefusals Take(ref Entry e, bool overflow)
    {
        var taken = new SuppressedRefusals(e.Source, e.Second, e.Suppressed, e.FirstHost, overflow);
        e.Suppressed = 0;
        e.FirstHost = null;
        Interlocked.Decrement(ref _pending);
        return taken;
    }

    /// <summary>The address as 128 bits, an IPv4 address in its mapped form so both spellings are one source; 0 for none.</summary>
    private static UInt128 KeyOf(IPAddress? address)
    {
        if (address is null)
        {
            return UInt128.Zero;
        }

        Span<byte> bytes = stackalloc byte[16];
        bytes.Clear(); // locals are not zeroed (SkipLocalsInit), and an IPv4 address fills only the last 4 bytes
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            address.TryWriteBytes(bytes[12..], out _);
            bytes[10] = 0xff;
            bytes[11] = 0xff;
        }
        else
        {
            address.TryWriteBytes(bytes, out _);
        }

        return BinaryPrimitives.ReadUInt128BigEndian(bytes);
    }

    private ulong Mix(UInt128 key)
    {
        var h = ((ulong)key ^ _seed) * 0x9E3779B97F4A7C15UL;
        h ^= (ulong)(key >> 64) * 0xC2B2AE3D27D4EB4FUL;
        return h ^ (h >> 29) ^ (h >> 47);
    }

    private struct Entry
    {
        public bool Used;
        public UInt128 Key;
        public long Second;
        public int Admitted;
        public int Suppressed;
        public IPAddress? Source;
        public string? FirstHost;
    }
}
