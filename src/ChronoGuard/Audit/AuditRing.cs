namespace ChronoGuard.Audit;

/// <summary>
/// Bounded multi-producer, single-consumer ring of <see cref="AuditRecord"/> (Vyukov's bounded queue).
/// A producer claims a position with one CAS on the tail; the position is the record's audit sequence
/// number, so a request knows its seq the moment it appends. <see cref="TryAppend"/> returning false is
/// back-pressure: the ring is full and the caller must wait, never drop.
/// </summary>
internal sealed class AuditRing
{
    // Sequences and records in separate arrays: initializing the sequences must not touch the record
    // pages (1.4 KiB each), so an idle sidecar does not hold the whole ring resident.
    private readonly long[] _sequences;
    private readonly AuditRecord[] _records;
    private readonly int _mask;
    private PaddedLong _tail;
    private PaddedLong _head;

    public AuditRing(int capacity, long firstSeq)
    {
        var size = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(2, capacity));
        _sequences = new long[size];
        _records = new AuditRecord[size];
        _mask = size - 1;
        // A recovered log starts the ring mid-lap: each slot holds the first position that maps to it.
        for (var i = 0; i < size; i++)
        {
            var pos = firstSeq + i;
            _sequences[pos & _mask] = pos;
        }

        _tail.Value = firstSeq;
        _head.Value = firstSeq;
    }

    public int Capacity => _sequences.Length;

    /// <summary>Records appended and not yet taken by the consumer.</summary>
    public long Depth => Volatile.Read(ref _tail.Value) - Volatile.Read(ref _head.Value);

    /// <summary>The next sequence number a producer would get.</summary>
    public long NextSeq => Volatile.Read(ref _tail.Value);

    /// <summary>Copies <paramref name="record"/> in with its sequence number set; false when full.</summary>
    public bool TryAppend(ref AuditRecord record, out long seq)
    {
        var pos = Volatile.Read(ref _tail.Value);
        while (true)
        {
            ref var sequence = ref _sequences[pos & _mask];
            var dif = Volatile.Read(ref sequence) - pos;
            if (dif == 0)
            {
                if (Interlocked.CompareExchange(ref _tail.Value, pos + 1, pos) == pos)
                {
                    record.Seq = pos;
                    _records[pos & _mask] = record;
                    // Publish after the copy: the consumer reads the record only once it sees pos + 1.
                    // A full fence, not a release store: the producer reads the writer's sleeping flag
                    // next, and that load must not pass this store (store-load reordering is the one
                    // x86 allows), or producer and writer can each miss the other and lose the wake-up.
                    Interlocked.Exchange(ref sequence, pos + 1);
                    seq = pos;
                    return true;
                }
            }
            else if (dif < 0)
            {
                seq = -1;
                return false;
            }

            pos = Volatile.Read(ref _tail.Value);
        }
    }

    /// <summary>
    /// Claims the next position without copying anything: the caller fills <see cref="At"/> in place
    /// and must then <see cref="Publish"/> it (the consumer waits on an unpublished position, so a claim
    /// that is never published stalls the ring). False when full.
    /// </summary>
    public bool TryClaim(out long seq)
    {
        var pos = Volatile.Read(ref _tail.Value);
        while (true)
        {
            var dif = Volatile.Read(ref _sequences[pos & _mask]) - pos;
            if (dif == 0)
            {
                if (Interlocked.CompareExchange(ref _tail.Value, pos + 1, pos) == pos)
                {
                    seq = pos;
                    return true;
                }
            }
            else if (dif < 0)
            {
                seq = -1;
                return false;
            }

            pos = Volatile.Read(ref _tail.Value);
        }
    }

    /// <summary>The slot of a claimed position (producer, between claim and publish).</summary>
    public ref AuditRecord At(long seq) => ref _records[seq & _mask];

    /// <summary>Hands a claimed, filled position to the consumer (a full fence: see <see cref="TryAppend"/>).</summary>
    public void Publish(long seq) => Interlocked.Exchange(ref _sequences[seq & _mask], seq + 1);

    /// <summary>Consumer only: the next record if it has been published.</summary>
    public bool TryPeek(out long seq)
    {
        seq = _head.Value;
        return Volatile.Read(ref _sequences[seq & _mask]) == seq + 1;
    }

    /// <summary>Consumer only: the record at the head (after <see cref="TryPeek"/> said it is there).</summary>
    public ref AuditRecord Head => ref _records[_head.Value & _mask];

    /// <summary>Consumer only: frees the head slot for the producer one lap ahead.</summary>
    public void Advance()
    {
        var pos = _head.Value;
        Volatile.Write(ref _sequences[pos & _mask], pos + _mask + 1);
        Volatile.Write(ref _head.Value, pos + 1);
    }

    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Explicit, Size = 128)]
    private struct PaddedLong
    {
        [System.Runtime.InteropServices.FieldOffset(64)]
        public long Value;
    }
}
