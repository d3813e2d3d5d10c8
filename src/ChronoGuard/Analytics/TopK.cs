using System.Numerics;
using System.Runtime.CompilerServices;
using System.Text;

namespace ChronoGuard.Analytics;

/// <summary>One heavy hitter: the domain, its Count-Min estimate, and ε·N (true count ∈ [Estimate − ErrorBound, Estimate] with probability 1 − δ).</summary>
internal readonly record struct HeavyHitter(string Domain, long Estimate, long ErrorBound)
{
    public long LowerBound => Math.Max(0, Estimate - ErrorBound);
}

/// <summary>
/// The most frequent domains, tracked as a small candidate set over a <see cref="CountMinSketch"/>.
/// </summary>
/// <remarks>
/// <para>The candidate set is an immutable table swapped whole with a CAS (copy-on-write). Membership
/// changes rarely next to the number of offers, so the common offer is a volatile read and one compare
/// against the table's admission bar, with no write and no allocation; a candidate's own offers add a
/// probe of a 2×-sized open-addressed hash index, still without a write, since the table holds no
/// counts: the sketch does, and the slow path and <see cref="Snapshot"/> read estimates from it.</para>
/// <para>The admission bar is the weakest candidate's estimate plus the sketch's own error ε·N: a
/// newcomer that does not beat the weakest candidate by more than the sketch can tell apart is not
/// worth a swap, and without the margin keys of near-equal counts at the set's edge would swap on
/// almost every offer. The bar is recomputed on the slow path and only ever raised in place, which
/// is safe because estimates and N only grow.</para>
/// <para>Allocation happens only when a domain enters the set: the domain's string, one slot and the
/// new table (about 2 KB for 64 candidates). Keys with frequency below ε never pass the bar once N
/// has grown, which is also the standard limit of Count-Min heavy hitters.</para>
/// </remarks>
internal sealed class TopK
{
    private readonly CountMinSketch _sketch;
    private Table _table;
    private long _admissions;

    public TopK(CountMinSketch sketch, int k = 20, int candidates = 64)
    {
        ArgumentNullException.ThrowIfNull(sketch);
        ArgumentOutOfRangeException.ThrowIfLessThan(k, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(candidates, k);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(candidates, 1024);
        _sketch = sketch;
        K = k;
        Capacity = candidates;
        _table = new Table([], (int)BitOperations.RoundUpToPowerOf2((uint)candidates * 2), bar: 0);
    }

    public int K { get; }

    public int Capacity { get; }

    /// <summary>How many times a domain entered the candidate set (each one a copy-on-write swap).</summary>
    public long Admissions => Volatile.Read(ref _admissions);

    /// <summary>
    /// Offers a key whose sketch estimate is <paramref name="estimate"/> after its update. The domain's
    /// bytes become a string only if the key enters the candidate set.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Offer(ulong hash, ReadOnlySpan<byte> domain, long estimate)
    {
        var table = Volatile.Read(ref _table);
        if (estimate <= Volatile.Read(ref table.Bar) || table.Contains(hash))
        {
            return;
        }

        OfferSlow(table, hash, domain, estimate);
    }

    /// <summary>The top k candidates by current estimate, largest first, each with the sketch's ε·N.</summary>
    public HeavyHitter[] Snapshot()
    {
        var slots = Volatile.Read(ref _table).Slots;
        var bound = _sketch.ErrorBound;
        var all = new HeavyHitter[slots.Length];
        for (var i = 0; i < slots.Length; i++)
        {
            all[i] = new HeavyHitter(slots[i].Domain, _sketch.Estimate(slots[i].Hash), bound);
        }

        Array.Sort(all, static (a, b) => b.Estimate != a.Estimate ? b.Estimate.CompareTo(a.Estimate) : string.CompareOrdinal(a.Domain, b.Domain));
        return all.Length <= K ? all : all[..K];
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void OfferSlow(Table table, ulong hash, ReadOnlySpan<byte> domain, long estimate)
    {
        Span<long> fresh = stackalloc long[Capacity];
        string? name = null;
        while (true)
        {
            var slots = table.Slots;
            Table next;
            if (slots.Length < Capacity)
            {
                // Until the set is full there is no weakest candidate to beat: every newcomer gets in.
                name ??= Encoding.ASCII.GetString(domain);
                var grown = new Slot[slots.Length + 1];
                slots.CopyTo(grown, 0);
                grown[^1] = new Slot(hash, name);
                next = new Table(grown, table.IndexSize, grown.Length < Capacity ? 0 : MinEstimate(grown, fresh, out _) + _sketch.ErrorBound);
            }
            else
            {
                var min = MinEstimate(slots, fresh, out var weakest);
                var margin = _sketch.ErrorBound;
                RaiseBar(table, min + margin);
                if (estimate <= min + margin)
                {
                    return;
                }

                name ??= Encoding.ASCII.GetString(domain);
                var replaced = (Slot[])slots.Clone();
                replaced[weakest] = new Slot(hash, name);
                fresh[weakest] = estimate;
                var newMin = long.MaxValue;
                foreach (var e in fresh[..replaced.Length])
                {
                    newMin = Math.Min(newMin, e);
                }

                next = new Table(replaced, table.IndexSize, newMin + margin);
            }

            if (Interlocked.CompareExchange(ref _table, next, table) == table)
            {
                Interlocked.Increment(ref _admissions);
                return;
            }

            table = Volatile.Read(ref _table);
            if (estimate <= Volatile.Read(ref table.Bar) || table.Contains(hash))
            {
                return;
            }
        }
    }

    private long MinEstimate(Slot[] slots, Span<long> fresh, out int weakest)
    {
        var min = long.MaxValue;
        weakest = 0;
        for (var i = 0; i < slots.Length; i++)
        {
            var e = _sketch.Estimate(slots[i].Hash);
            fresh[i] = e;
            if (e < min)
            {
                min = e;
                weakest = i;
            }
        }

        return min;
    }

    private static void RaiseBar(Table table, long bar)
    {
        var current = Volatile.Read(ref table.Bar);
        while (bar > current)
        {
            var seen = Interlocked.CompareExchange(ref table.Bar, bar, current);
            if (seen == current)
            {
                return;
            }

            current = seen;
        }
    }

    private sealed class Slot(ulong hash, string domain)
    {
        public ulong Hash { get; } = hash;

        public string Domain { get; } = domain;
    }

    /// <summary>One immutable candidate set with its hash index; only <see cref="Bar"/> changes, upward.</summary>
    private sealed class Table
    {
        public readonly Slot[] Slots;
        public readonly int IndexSize;
        public long Bar;

        // Keys of the open-addressed index, 0 for empty; a key of 0 is stored as 1, so hashes 0 and 1
        // share an entry (a 2^-63 chance of one domain being taken for the other's candidate).
        private readonly ulong[] _keys;

        public Table(Slot[] slots, int indexSize, long bar)
        {
            Slots = slots;
            IndexSize = indexSize;
            Bar = bar;
            _keys = new ulong[indexSize];
            var mask = indexSize - 1;
            foreach (var slot in slots)
            {
                var key = slot.Hash == 0 ? 1 : slot.Hash;
                var i = (int)key & mask;
                while (_keys[i] != 0)
                {
                    i = (i + 1) & mask;
                }

                _keys[i] = key;
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public bool Contains(ulong hash)
        {
            var key = hash == 0 ? 1 : hash;
            var keys = _keys;
            var mask = keys.Length - 1;
            var i = (int)key & mask;
            while (true)
            {
                var k = keys[i];
                if (k == key)
                {
                    return true;
                }

                if (k == 0)
                {
                    return false;
                }

                i = (i + 1) & mask;
            }
        }
    }
}
