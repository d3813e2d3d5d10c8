namespace ChronoGuard.Audit;

/// <summary>
/// The producer side: what request handlers call. Admission, appends (each learns its seq at once from the
/// lock-free ring), the durability wait of commit-before-forward, and the counters the metrics read.
/// </summary>
internal sealed partial class AuditWriter
{
    // Where Claim points when it cannot queue: racy writes from many threads, never read.
    private AuditRecord _scratch;
    private long _backPressure;
    private long _unrecordedTotal;
    private long _unrecordedPending;
    private long _unrecordedFirstNs;
    private long _unrecordedLastNs;
    // What the writer is doing when it is not draining: Awake, Asleep (idle or awaiting a commit: wake it
    // for a record) or Napping (a commit interval it wakes from by itself: wake it only for a filling ring).
    private const int Awake = 0, Asleep = 1, Napping = 2;
    private int _sleeping;

    /// <summary>The highest seq durably committed (-1 for an empty log).</summary>
    public long CommittedSeq => Volatile.Read(ref _committedSeq);

    public (long Seq, byte[] Hash) Head
    {
        get
        {
            var head = Volatile.Read(ref _committedHead);
            return (head.Item1, head.Item2);
        }
    }

    public long QueueDepth => _ring.Depth;

    /// <summary>The last seq handed out so far (-1 before the first): waiting for it durable waits for every record claimed before now.</summary>
    public long LastClaimedSeq => _ring.NextSeq - 1;

    public long RecordsTotal => Volatile.Read(ref _recordsTotal);

    /// <summary>Appends that found the ring full and had to wait (back-pressure, never a drop).</summary>
    public long BackPressureTotal => Volatile.Read(ref _backPressure);

    /// <summary>The writer cannot make records durable right now (it retries by itself).</summary>
    public bool Faulted => Volatile.Read(ref _faulted) != 0;

    /// <summary>Faults since start (each episode counts once, however long it lasts).</summary>
    public long FaultsTotal => Volatile.Read(ref _faultsTotal);

    /// <summary>Why the writer last faulted (null before the first fault).</summary>
    public string? FaultCause => Volatile.Read(ref _faultCause);

    /// <summary>Records that could not be queued (writer faulted and the ring full); counted, then written into the chain.</summary>
    public long UnrecordedTotal => Volatile.Read(ref _unrecordedTotal);

    public bool Healthy => !Faulted && !_stopped && _thread.IsAlive;

    /// <summary>
    /// What the request path may do now. Checked before a request is forwarded: a faulted writer
    /// refuses in commit-before-forward and with <c>OnFailure=refuse</c>, so nothing fails open.
    /// </summary>
    public AuditAdmission Admit()
    {
        if (Volatile.Read(ref _faulted) == 0 && !_stopped)
        {
            return AuditAdmission.Open;
        }

        return CommitBeforeForward || !ForwardOnFailure ? AuditAdmission.Refuse : AuditAdmission.ForwardUnrecorded;
    }

    /// <summary>Appends without waiting; false when the ring is full (the caller must retry, not drop).</summary>
    public bool TryAppend(ref AuditRecord record, out long seq)
    {
        if (record.TimestampNs == 0)
        {
            record.TimestampNs = NowNs();
        }

        if (!_ring.TryAppend(ref record, out seq))
        {
            Interlocked.Increment(ref _backPressure);
            Wake();
            return false;
        }

        // The ring's publish was a full fence, so this load cannot be satisfied before it.
        WakeOnPublish();

        return true;
    }

    /// <summary>
    /// Appends, waiting while the ring is full (back-pressure, never a lost record) unless the writer
    /// has faulted or stopped: then <see cref="Unrecorded"/>, and the record is counted as unrecorded.
    /// The wait holds the calling thread: async callers await <see cref="WaitForRoomAsync"/> first
    /// (<see cref="SystemRecords.AppendAsync"/>); this is for the few synchronous ones (start, stop).
    /// </summary>
    public long Append(ref AuditRecord record)
    {
        var spin = default(SpinWait);
        long seq;
        while (!TryAppend(ref record, out seq))
        {
            if (Volatile.Read(ref _faulted) != 0 || _stopping)
            {
                CountUnrecorded();
                return Unrecorded;
            }

            spin.SpinOnce(sleep1Threshold: 20);
        }

        return seq;
    }

    /// <summary>
    /// The allocation- and copy-free append for the request path: claims the next seq (waiting while
    /// the ring is full and the writer healthy) and returns its slot, cleared and stamped, to fill in
    /// place; the caller must call <see cref="Publish"/> with <paramref name="seq"/>, in a finally.
    /// A faulted writer still queues while the ring has room (written after recovery). When it cannot,
    /// seq is <see cref="Unrecorded"/> (never a seq of the chain), the slot is scratch that is never
    /// written out, the request is counted unrecorded, and <see cref="WaitDurableAsync"/> says false.
    /// Callers await <see cref="WaitForRoomAsync"/> first; the wait here holds the thread, and is left
    /// to a producer that lost the race for the last slot (until the next drain) or cannot await.
    /// </summary>
    public ref AuditRecord Claim(out long seq)
    {
        var spin = default(SpinWait);
        var waited = false;
        while (!_ring.TryClaim(out seq))
        {
            if (!waited)
            {
                waited = true;
                Interlocked.Increment(ref _backPressure);
            }

            Wake();
            if (Volatile.Read(ref _faulted) != 0 || _stopping)
            {
                CountUnrecorded();
                seq = Unrecorded;
                return ref _scratch;
            }

            spin.SpinOnce(sleep1Threshold: 20);
        }

        ref var record = ref _ring.At(seq);
        record.Reset();
        record.Seq = seq;
        record.TimestampNs = NowNs();
        return ref record;
    }

    /// <summary>Hands a slot filled after <see cref="Claim"/> to the writer.</summary>
    public void Publish(long seq)
    {
        if (seq < 0)
        {
            return;
        }

        _ring.Publish(seq);
        // Publish was a full fence (Interlocked): the writer sets _sleeping with one too before it
        // looks at the ring, so at least one side sees the other.
        WakeOnPublish();
    }

    /// <summary>
    /// True once <paramref name="seq"/> is durably committed; false, never a hang, when it cannot be:
    /// the seq is <see cref="Unrecorded"/>, the writer faulted (including a commit past its deadline,
    /// which the watchdog declares), or the writer stopped.
    /// </summary>
    public ValueTask<bool> WaitDurableAsync(long seq)
    {
        if (seq < 0)
        {
            return new ValueTask<bool>(false);
        }

        if (seq <= Volatile.Read(ref _committedSeq))
        {
            return new ValueTask<bool>(true);
        }

        if (Volatile.Read(ref _faulted) != 0 || _stopped)
        {
            return new ValueTask<bool>(false);
        }

        return new ValueTask<bool>(WaitSlowAsync(seq));
    }

    private async Task<bool> WaitSlowAsync(long seq)
    {
        Wake();
        while (true)
        {
            // One completion source per commit, shared by every waiter of that commit: true when it
            // committed, false when the writer faulted or stopped.
            var next = Volatile.Read(ref _nextCommit);
            if (seq <= Volatile.Read(ref _committedSeq))
            {
                return true;
            }

            if (Volatile.Read(ref _faulted) != 0 || _stopped)
            {
                return false;
            }

            if (!await next.Task.ConfigureAwait(false))
            {
                return seq <= Volatile.Read(ref _committedSeq);
            }
        }
    }

    /// <summary>After a record was published (behind a full fence): wake the writer if it would not come by itself in time.</summary>
    private void WakeOnPublish()
    {
        var sleeping = Volatile.Read(ref _sleeping);
        if (sleeping == Asleep || (sleeping == Napping && _ring.Depth >= _ring.Capacity / 4))
        {
            Wake();
        }
    }

    private long NowNs() => (_time.GetUtcNow().UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100;

    private void CountUnrecorded()
    {
        var now = NowNs();
        Interlocked.CompareExchange(ref _unrecordedFirstNs, now, 0);
        Volatile.Write(ref _unrecordedLastNs, now);
        Interlocked.Increment(ref _unrecordedTotal);
        Interlocked.Increment(ref _unrecordedPending);
    }

    private void Wake() => _wake.Set();
}
