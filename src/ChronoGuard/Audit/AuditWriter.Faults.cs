using System.Buffers.Binary;
using System.Diagnostics;
using FASTER.core;

namespace ChronoGuard.Audit;

/// <summary>
/// Fault and recovery: how a fault is declared (once per episode), the watchdog that declares the ones the
/// writer cannot see, and the re-open that appends again exactly what was not yet durable.
/// </summary>
internal sealed partial class AuditWriter
{
    private long _faultsTotal;
    private long _progressTicks;
    private long _faultedAtNs;
    private int _faulted;
    private string? _faultCause;
    private string? _recoveredNote;

    /// <summary>Declares a fault: once per episode it is counted, reported and every waiter released.</summary>
    private void Fault(string cause)
    {
        Volatile.Write(ref _faultCause, cause);
        if (Interlocked.CompareExchange(ref _faulted, 1, 0) != 0)
        {
            return;
        }

        Volatile.Write(ref _faultedAtNs, NowNs());
        Interlocked.Increment(ref _faultsTotal);
        Volatile.Read(ref _nextCommit).TrySetResult(false);
        ReleaseRoomWaiters();
        Wake();
        try
        {
            OnFault?.Invoke(cause);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException)
        {
            // A failing log sink must not take the writer with it.
        }
    }

    /// <summary>Timer: a writer with work pending and no commit for longer than the deadline has faulted.</summary>
    private void Watch()
    {
        if (_stopped || Volatile.Read(ref _faulted) != 0)
        {
            return;
        }

        var pending = _ring.Depth > 0 || Volatile.Read(ref _takenSeq) > Volatile.Read(ref _committedSeq);
        if (!pending)
        {
            Volatile.Write(ref _progressTicks, Stopwatch.GetTimestamp());
            return;
        }

        var stalled = Stopwatch.GetTimestamp() - Volatile.Read(ref _progressTicks);
        if (stalled > _deadlineTicks)
        {
            Fault($"a commit did not complete within Audit:CommitTimeoutMs ({Options.CommitTimeoutMs} ms): the audit disk is stuck or the writer stalled");
        }
    }

    /// <summary>
    /// Faulted: re-open the log with backoff until it takes the entries that were not yet durable again
    /// and commits them. False when stopping first.
    /// </summary>
    private bool Recover()
    {
        // What is known committed goes into the head file first: if the log is gone for good, the
        // next start then refuses instead of beginning a new chain.
        try
        {
            WriteMarker();
        }
        catch (Exception ex) when (IsWriteError(ex))
        {
        }

        // An unexpected exception that comes back after every recovery (a record the writer cannot
        // encode, a bug) backs off towards the 5 s ceiling from the first attempt, not from 50 ms.
        var delayMs = Math.Min(5000, 50 << Math.Min(_unexpectedStreak, 7));
        while (!_stopping)
        {
            _wake.Wait(delayMs);
            _wake.Reset();
            if (_stopping)
            {
                break;
            }

            delayMs = Math.Min(delayMs * 2, 5000);
            try
            {
                // A FASTER instance whose commit never completed can block in Dispose: abandon it then.
                var generation = Interlocked.Increment(ref _logGeneration);
                // The instance to close is taken here, not when the task runs: on a loaded machine the task
                // can start after the re-open below, and would then dispose the new log and its device
                // (commits then "succeeded" while no commit file was ever written).
                var (failedLog, failedDevice) = (_log, _device);
                var closing = Task.Run(() => CloseLog(failedLog, failedDevice));
                if (!closing.Wait(TimeSpan.FromTicks(_deadlineTicks * TimeSpan.TicksPerSecond / Stopwatch.Frequency)))
                {
                    Volatile.Write(ref _faultCause, FaultCause + "; the failed log instance did not close and was abandoned");
                }

                (_log, _device) = OpenLog(_directory, _bits, readOnly: false, Fault, () => IsLogGeneration(generation));
                var recovered = RecoveredSeq();
                var committed = Volatile.Read(ref _committedSeq);
                if (recovered < committed)
                {
                    throw new IOException($"the log on disk now ends at seq {recovered}, before the committed seq {committed}: committed records were lost under the running writer (restart, and run 'chronoguard audit repair' if it refuses)");
                }

                // Append again, in order, exactly the entries FASTER did not make durable.
                var last = recovered;
                byte[]? lastHash = null;
                foreach (var buffer in new[] { _covered, _open })
                {
                    foreach (var (seq, bytes) in buffer.Entries())
                    {
                        if (seq > last)
                        {
                            Enqueue(bytes.Span);
                            last = seq;
                            lastHash = bytes.Span.Slice(AuditCodec.HashBytes, AuditCodec.HashBytes).ToArray();
                        }
                    }
                }

                var tail = _log.TailAddress;
                var started = Stopwatch.GetTimestamp();
                var commit = _log.CommitAsync().AsTask();
                if (!commit.Wait(TimeSpan.FromTicks(_deadlineTicks * TimeSpan.TicksPerSecond / Stopwatch.Frequency)))
                {
                    throw new IOException($"a commit did not complete within Audit:CommitTimeoutMs ({Options.CommitTimeoutMs} ms)");
                }

                _covered.Clear();
                _open.Clear();
                if (last > committed)
                {
                    Published(last, lastHash ?? Head.Hash, tail, Stopwatch.GetTimestamp() - started);
                }
                else
                {
                    Volatile.Write(ref _committedAddress, Math.Max(tail, Volatile.Read(ref _committedAddress)));
                }

                CheckFiles();
                WriteMarker();
                // The first record drained next needs the bound moved on: a disk that still refuses it stays a fault.
                EnsureReserved(Volatile.Read(ref _takenSeq) + 1);
                var since = FormatNs(Volatile.Read(ref _faultedAtNs));
                var note = $"the audit writer failed at {since} ({FaultCause}) and recovered at {FormatNs(NowNs())}; no record was lost";
                Volatile.Write(ref _recoveredNote, note);
                Volatile.Write(ref _progressTicks, Stopwatch.GetTimestamp());
                Volatile.Write(ref _nextCommit, new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously));
                Volatile.Write(ref _faulted, 0);
                try
                {
                    OnRecovered?.Invoke(note);
                }
                catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException)
                {
                }

                return true;
            }
            catch (Exception ex)
            {
                // Any exception, expected or not, is a failed attempt: the writer stays faulted and tries again.
                Volatile.Write(ref _faultCause, IsWriteError(ex) ? Cause(ex) : Unexpected(ex));
            }
        }

        return false;
    }

    /// <summary>After a re-open: the highest seq in the log from the last address known committed.</summary>
    private long RecoveredSeq()
    {
        var from = Volatile.Read(ref _committedAddress);
        if (_log.TailAddress < from)
        {
            return Math.Min(Volatile.Read(ref _committedSeq) - 1, RecoverHead(_log, FirstReadableAddress(_log, _directory, _bits)).Next - 1);
        }

        var seq = Volatile.Read(ref _committedSeq);
        using var iterator = _log.Scan(from, _log.TailAddress);
        while (iterator.GetNext(out var entry, out var length, out _))
        {
            if (length >= AuditCodec.EntryPrefix + 9)
            {
                seq = Math.Max(seq, BinaryPrimitives.ReadInt64BigEndian(entry.AsSpan(AuditCodec.EntryPrefix + 1)));
            }
        }

        return seq;
    }

    private void CloseLog() => CloseLog(_log, _device);

    private static void CloseLog(FasterLog log, IDevice device)
    {
        try
        {
            log.Dispose();
        }
        catch (Exception ex) when (IsWriteError(ex))
        {
            // The old instance is the broken one; what matters is the re-opened log.
        }

        try
        {
            device.Dispose();
        }
        catch (Exception ex) when (IsWriteError(ex))
        {
        }
    }

    private static bool IsWriteError(Exception ex) =>
        ex is IOException or FasterException or ObjectDisposedException or AggregateException or UnauthorizedAccessException or InvalidOperationException;

    /// <summary>
    /// The cause of a fault no I/O error explains: the type and message, and where it was thrown, so the
    /// one log line per episode is enough to file the bug.
    /// </summary>
    private static string Unexpected(Exception ex)
    {
        var where = (ex.StackTrace ?? string.Empty).AsSpan().TrimStart();
        var end = where.IndexOfAny('\r', '\n');
        where = end >= 0 ? where[..end] : where;
        return $"the audit writer failed unexpectedly ({ex.GetType().FullName}: {Cause(ex)}{(where.IsEmpty ? "" : "; " + where.ToString())})";
    }

    private static string Cause(Exception ex)
    {
        var inner = ex is AggregateException { InnerException: { } first } ? first : ex;
        return inner.Message.ReplaceLineEndings(" ");
    }
}
