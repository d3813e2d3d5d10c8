using System.Diagnostics;

namespace ChronoGuard.Audit;

/// <summary>
/// The writer thread: drains the ring in batches, chains each record onto the previous hash, enqueues it
/// to FASTER and keeps one group commit in flight, then publishes the committed watermark.
/// </summary>
internal sealed partial class AuditWriter
{
    private const long MarkerIntervalMs = 1000;
    private readonly int _maxBatch;
    private readonly long _commitIntervalTicks;
    private readonly byte[] _prevHash = new byte[AuditCodec.HashBytes];
    // Entries appended to FASTER and not yet durable: those the commit in flight covers, and those after
    // it. Kept to append again after a fault; dropped when their commit completes.
    private EntryBuffer _covered = new();
    private EntryBuffer _open = new();
    private TaskCompletionSource<bool> _nextCommit = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _takenSeq;
    // When the oldest record not yet covered by a commit was appended (its ts; 0: none). Writer thread only.
    private long _oldestPendingNs;
    // Unexpected faults since the loop last committed (writer thread only): sets the recovery backoff.
    private int _unexpectedStreak;

    /// <summary>Tests only: runs on the writer thread at the top of every loop pass (to hold it, or to throw inside it).</summary>
    internal Action? LoopHook { get; set; }

    private void Run()
    {
        var lastMarker = Stopwatch.GetTimestamp();
        var pendingSince = 0L;
        // One commit in flight at a time, and the writer keeps chaining while the device works: the next
        // commit then covers everything enqueued meanwhile (group commit without a stall per batch).
        Task? inflight = null;
        long inflightSeq = 0, inflightStarted = 0, inflightTail = 0;
        byte[]? inflightHash = null;
        while (true)
        {
            if (Volatile.Read(ref _faulted) != 0)
            {
                inflight = null;
                pendingSince = 0;
                _oldestPendingNs = 0;
                if (!Recover())
                {
                    return;
                }

                lastMarker = Stopwatch.GetTimestamp();
                WriteNotes();
                continue;
            }

            try
            {
                LoopHook?.Invoke();
                var drained = Drain();
                if (inflight is { IsCompleted: true })
                {
                    var done = inflight;
                    inflight = null;
                    done.GetAwaiter().GetResult();
                    _covered.Clear();
                    _unexpectedStreak = 0;
                    Published(inflightSeq, inflightHash!, inflightTail, Stopwatch.GetTimestamp() - inflightStarted);
                }

                var now = Stopwatch.GetTimestamp();
                var lastSeq = Volatile.Read(ref _takenSeq);
                var covered = inflight is null ? Volatile.Read(ref _committedSeq) : inflightSeq;
                var pending = lastSeq > covered;
                if (pending && pendingSince == 0)
                {
                    // Due CommitIntervalMs after the oldest record was appended, not after the writer got
                    // to it: producers do not wake a napping writer, so it may drain a record late.
                    pendingSince = PendingSince(now);
                }

                if (inflight is null && pending && (CommitBeforeForward || now - pendingSince >= _commitIntervalTicks || _stopping))
                {
                    inflightSeq = lastSeq;
                    inflightHash = (byte[])_prevHash.Clone();
                    inflightStarted = now;
                    inflightTail = _log.TailAddress;
                    // The entries this commit covers move aside; those enqueued from now on are the next commit's.
                    (_covered, _open) = (_open, _covered);
                    inflight = _log.CommitAsync().AsTask();
                    inflight.ContinueWith(static (_, w) => ((AuditWriter)w!).Wake(), this, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
                    pendingSince = 0;
                    _oldestPendingNs = 0;
                }

                if (inflight is null && !pending)
                {
                    Volatile.Write(ref _progressTicks, now);
                    if (now - lastMarker >= MarkerIntervalMs * Stopwatch.Frequency / 1000)
                    {
                        lastMarker = now;
                        Housekeeping();
                    }
                }
                else if (now - lastMarker >= MarkerIntervalMs * Stopwatch.Frequency / 1000)
                {
                    lastMarker = now;
                    CheckFiles();
                    WriteMarker();
                    WriteNotes();
                }

                if (drained == _maxBatch)
                {
                    continue;
                }

                if (_stopping && inflight is null && !pending && !_ring.TryPeek(out _))
                {
                    if (OwesNotesAtStop())
                    {
                        WriteNotes();
                        continue;
                    }

                    WriteMarker();
                    return;
                }

                // Nothing to drain: sleep until an append or a finished commit wakes us, or the interval is up.
                // A full fence, as on the producer side (see Publish): the ring check below must not be
                // read before this store is visible. With a commit due or in flight the writer wakes by
                // itself (the interval, or the commit's completion) and drains everything then: producers
                // need not wake it for each record (a futex and a context switch per record), only when
                // it is idle or the ring fills (see WakeOnPublish). A durability waiter wakes it itself.
                var napping = inflight is null && pending;
                Interlocked.Exchange(ref _sleeping, inflight is null && !pending ? Asleep : Napping);
                if (!_ring.TryPeek(out _) && inflight is not { IsCompleted: true } && Volatile.Read(ref _faulted) == 0)
                {
                    var wait = napping ? Math.Max(0, (pendingSince + _commitIntervalTicks - now) * 1000 / Stopwatch.Frequency) : Options.IdleWaitMs;
                    _wake.Wait((int)Math.Max(1, wait));
                }

                _wake.Reset();
                Volatile.Write(ref _sleeping, Awake);
            }
            catch (Exception ex) when (IsWriteError(ex))
            {
                Fault(Cause(ex));
            }
            catch (Exception ex)
            {
                // The policy for anything else thrown in the loop (docs/architecture.md, "The audit writer"):
                // a writer fault like a failed disk, not the end of the process. Ending the process would
                // drop every record queued and not yet durable and take the proxy down with it; as a fault,
                // requests are refused (or forwarded unrecorded, by Audit:OnFailure), /readyz and
                // chronoguard_audit_writer_faults_total show it, OnFault logs the cause once, and recovery
                // re-appends what was not durable. What was in flight is kept (the entries stay in
                // _covered/_open, the records in the ring), so nothing the writer held is lost.
                _unexpectedStreak++;
                Fault(Unexpected(ex));
            }
        }
    }

    /// <summary>The Stopwatch time the oldest pending record was appended, from its ts (clamped: a stepped clock moves it at most one interval).</summary>
    private long PendingSince(long now)
    {
        var ageNs = Math.Clamp(NowNs() - _oldestPendingNs, 0, Math.Max(1, Options.CommitIntervalMs) * 1_000_000L);
        return now - (long)(ageNs * (double)Stopwatch.Frequency / 1_000_000_000);
    }

    /// <summary>Chains and appends up to one batch from the ring; every entry is also kept until durable.</summary>
    private int Drain()
    {
        Span<byte> entry = stackalloc byte[AuditCodec.EntryPrefix + AuditCodec.MaxCanonicalBytes];
        Span<byte> hash = stackalloc byte[AuditCodec.HashBytes];
        var drained = 0;
        while (drained < _maxBatch && _ring.TryPeek(out var seq))
        {
            EnsureReserved(seq);
            ref var record = ref _ring.Head;
            if (_oldestPendingNs == 0)
            {
                _oldestPendingNs = record.TimestampNs;
            }

            KeepMonotonic(ref record, seq);
            OnChained?.Invoke(in record);
            var n = AuditCodec.Encode(record, entry[AuditCodec.EntryPrefix..]);
            var canonical = entry.Slice(AuditCodec.EntryPrefix, n);
            _chain.Compute(_prevHash, canonical, hash);
            _prevHash.CopyTo(entry);
            hash.CopyTo(entry[AuditCodec.HashBytes..]);
            var bytes = entry[..(AuditCodec.EntryPrefix + n)];
            _open.Add(seq, bytes);
            hash.CopyTo(_prevHash);
            Volatile.Write(ref _takenSeq, seq);
            _ring.Advance();
            drained++;
            Enqueue(bytes);
        }

        if (drained > 0)
        {
            // Slots were freed (Advance is a release store): a full fence before the waiter count is read,
            // as WaitForRoomAsync fences between counting itself in and looking at the ring.
            Interlocked.MemoryBarrier();
            ReleaseRoomWaiters();
        }

        return drained;
    }

    /// <summary>
    /// FASTER's Enqueue spins forever when its memory is full of pages it cannot flush (a full disk);
    /// this gives up when the watchdog has declared the fault, so the writer can recover instead. A stop
    /// is not a reason: its final drain routinely outruns the flushes (more queued than the 2 MiB of
    /// pages hold) and must wait for them, or it drops what was queued and never commits. A stop that
    /// cannot finish is ended by the watchdog (a stuck disk) or by Dispose giving up on the thread.
    /// </summary>
    private void Enqueue(ReadOnlySpan<byte> bytes)
    {
        var spin = default(SpinWait);
        while (!_log.TryEnqueue(bytes, out _))
        {
            if (Volatile.Read(ref _faulted) != 0 || _stopped)
            {
                throw new IOException(FaultCause ?? "the audit log stopped accepting appends");
            }

            spin.SpinOnce(sleep1Threshold: 20);
        }
    }

    /// <summary>A commit finished: everything up to <paramref name="lastSeq"/> is durable.</summary>
    private void Published(long lastSeq, byte[] hash, long tail, long elapsedTicks)
    {
        OnCommit?.Invoke(elapsedTicks);
        Interlocked.Add(ref _recordsTotal, lastSeq - Volatile.Read(ref _committedSeq));
        Volatile.Write(ref _committedAddress, tail);
        Volatile.Write(ref _committedHead, Tuple.Create(lastSeq, hash));
        Volatile.Write(ref _committedSeq, lastSeq);
        Volatile.Write(ref _progressTicks, Stopwatch.GetTimestamp());
        var done = Interlocked.Exchange(ref _nextCommit, new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously));
        done.TrySetResult(true);
        Checkpoints?.OnCommitted(lastSeq, hash, final: _stopping);
        ApplyRetention();
    }
}
