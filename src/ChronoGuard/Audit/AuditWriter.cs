using System.Diagnostics;
using System.Globalization;
using FASTER.core;

namespace ChronoGuard.Audit;

/// <summary>
/// Persists the audit chain. Request handlers append to a lock-free ring and learn their sequence
/// number at once; one dedicated writer thread drains the ring in batches, hashes the chain, appends
/// to a FASTER log and commits once per batch (group commit), then advances the committed watermark
/// that <see cref="WaitDurableAsync"/> waiters (commit-before-forward) observe.
/// <para>
/// Failure model: any write or commit error, a commit that misses <see cref="AuditOptions.CommitTimeoutMs"/>,
/// or log files vanishing under the writer is a fault. A fault is reported once (<see cref="OnFault"/>),
/// answers every durability waiter "not durable", and makes <see cref="Admit"/> refuse (or forward
/// unrecorded, by option). The writer keeps the entries of every commit not yet durable, so it can
/// re-open the log, append exactly those again and go on when the cause goes away: no seq is lost or
/// reordered. Requests that could not even be queued while faulted are counted and, after recovery,
/// written into the chain as a <c>system</c> record (<c>reason=unrecorded</c>).
/// </para>
/// </summary>
internal sealed partial class AuditWriter : IDisposable
{
    /// <summary>The seq <see cref="Claim"/> gives when it could not queue a record (never durable).</summary>
    public const long Unrecorded = -1;

    private readonly string _directory;
    private readonly int _bits;
    private readonly AuditDirectoryLock _dirLock;
    private readonly string _chainId;
    private FasterLog _log;
    private IDevice _device;
    private readonly AuditRing _ring;
    private readonly AuditChain _chain;
    private readonly TimeProvider _time;
    private readonly Thread _thread;
    private readonly Timer _watchdog;
    // No spinning before the writer blocks (spinCount 0): on more than one core a default event spins
    // ~35 rounds, most of them sched_yield, every time the writer goes to sleep (with per-tunnel records,
    // up to twice per tunnel: perf/results/2026-12-04-cpu-per-tunnel.md). A wake costs a futex either way.
    private readonly ManualResetEventSlim _wake = new(false, spinCount: 0);
    private readonly long _deadlineTicks;
    private long _committedSeq;
    private long _committedAddress;
    // Seq and hash published as one immutable pair: two separate fields could be read torn.
    private Tuple<long, byte[]> _committedHead;
    private long _recordsTotal;
    private volatile bool _stopping;
    private volatile bool _stopped;

    private AuditWriter(AuditOptions options, TimeProvider time, string directory, int bits, AuditDirectoryLock dirLock, string chainId, FasterLog log, IDevice device, byte[]? key, AuditLogScan scan, long nextSeq, byte[] headHash, long ringStart)
    {
        Options = options;
        CommitBeforeForward = string.Equals(options.Durability, "commit-before-forward", StringComparison.OrdinalIgnoreCase);
        ForwardOnFailure = string.Equals(options.OnFailure, "forward", StringComparison.OrdinalIgnoreCase);
        _directory = directory;
        _bits = bits;
        _dirLock = dirLock;
        _chainId = chainId;
        _time = time;
        _log = log;
        _device = device;
        _chain = new AuditChain(key);
        _ring = new AuditRing(options.QueueCapacity, Math.Max(nextSeq, ringStart));
        headHash.CopyTo(_prevHash, 0);
        _committedSeq = nextSeq - 1;
        _takenSeq = nextSeq - 1;
        _committedAddress = Math.Max(scan.ReadableEnd, log.TailAddress);
        _committedHead = Tuple.Create(nextSeq - 1, headHash);
        RecoveredRecords = nextSeq;
        _commitIntervalTicks = Math.Max(1, options.CommitIntervalMs) * Stopwatch.Frequency / 1000;
        // A commit is due CommitIntervalMs after its first record at the latest; it is late after the timeout on top.
        _deadlineTicks = (Math.Max(1, options.CommitTimeoutMs) + Math.Max(1, options.CommitIntervalMs)) * Stopwatch.Frequency / 1000;
        _maxBatch = Math.Clamp(options.MaxBatch, 1, 65_536);
        _progressTicks = Stopwatch.GetTimestamp();
        // A dedicated thread, not a Task on the pool: the writer blocks in FASTER's commit (fsync) by
        // design, and a pool thread doing that under load would starve request continuations.
        _thread = new Thread(Run) { Name = "chronoguard-audit-writer", IsBackground = true };
        // The watchdog sees a writer that cannot: one stuck inside FASTER, or asleep with work pending.
        var period = Math.Clamp(options.CommitTimeoutMs / 4, 20, 1000);
        _watchdog = new Timer(static w => ((AuditWriter)w!).Watch(), this, Timeout.Infinite, Timeout.Infinite);
        _watchdog.Change(period, period);
    }

    public AuditOptions Options { get; }

    public bool CommitBeforeForward { get; }

    /// <summary><c>Audit:OnFailure=forward</c>: a faulted writer in batched mode keeps traffic flowing.</summary>
    public bool ForwardOnFailure { get; }

    public bool IsHmac => _chain.IsHmac;

    /// <summary>Records found in the log at start (the next seq).</summary>
    public long RecoveredRecords { get; }

    /// <summary>Called with the Stopwatch ticks of every commit (for the commit-duration histogram).</summary>
    public Action<long>? OnCommit { get; set; }

    /// <summary>Signs the committed head into checkpoints.jsonl when Audit:SigningKeyFile is set.</summary>
    public CheckpointSigner? Checkpoints { get; private set; }

    /// <summary>Called on the writer thread when retention dropped segments: the first kept seq and its prevHash.</summary>
    public Action<long, byte[]>? OnRetention { get; set; }

    /// <summary>
    /// Called on the writer thread with every record as it is chained, once (re-appends after a fault are
    /// not chained again). Set before the first append; the refusal log copies what it wants and returns.
    /// </summary>
    public AuditRecordObserver? OnChained { get; set; }

    /// <summary>Called once per fault episode with its cause (from the writer thread or the watchdog).</summary>
    public Action<string>? OnFault { get; set; }

    /// <summary>Called when a faulted writer is healthy again, with what the episode cost.</summary>
    public Action<string>? OnRecovered { get; set; }

    /// <summary>
    /// Takes the directory's writer lock, recovers the log and refuses (<see cref="InvalidDataException"/>,
    /// one line) a log whose readable end falls short of what was committed: appending there would
    /// write over committed records. <see cref="IOException"/> when another writer holds the directory.
    /// </summary>
    public static AuditWriter Open(AuditOptions options, TimeProvider time)
    {
        if (!string.Equals(options.OnFailure, "refuse", StringComparison.OrdinalIgnoreCase) && !string.Equals(options.OnFailure, "forward", StringComparison.OrdinalIgnoreCase))
        {
            throw new InvalidDataException($"Audit:OnFailure: '{options.OnFailure}' is not refuse or forward");
        }

        Directory.CreateDirectory(options.Directory);
        var key = AuditChain.ReadKey(options.HmacKeyFile);
        var signer = CheckpointSigner.Open(options, time);
        var dirLock = AuditDirectoryLock.Acquire(options.Directory);
        AuditWriter? owner = null;
        FasterLog? log = null;
        IDevice? device = null;
        try
        {
            // The segment size is fixed at creation: FASTER addresses files by it, so a later, different
            // setting would misread the log. The first value written wins.
            var bits = ReadSegmentBits(options.Directory) ?? options.SegmentSizeBits;
            if (!File.Exists(Path.Combine(options.Directory, SegmentBitsFile)))
            {
                File.WriteAllText(Path.Combine(options.Directory, SegmentBitsFile), bits.ToString(CultureInfo.InvariantCulture) + "\n");
            }

            options.SegmentSizeBits = bits;
            options.MaxBytes = ResolveMaxBytes(options);
            // Refused before the log is opened for writing: nothing may touch a damaged log but repair.
            var scan = AuditLogScan.Run(options.Directory, requireLog: false, exclusive: true);
            var repair = AuditRepairNote.Read(options.Directory);
            if (scan.Damage is not null && !(repair is not null && scan.Records == 0 && scan.Damage.Kind == LogDamageKind.ShortOfHead))
            {
                throw new InvalidDataException(scan.Describe() + $"; refusing to append over committed records: run 'chronoguard audit repair --audit-dir {options.Directory}' to move the damaged part aside");
            }

            try
            {
                (log, device) = OpenLog(options.Directory, bits, readOnly: false, cause => owner?.Fault(cause), () => owner is null || owner.IsLogGeneration(0));
            }
            catch (FasterException ex)
            {
                throw new InvalidDataException($"{options.Directory}: the audit log is damaged: its commit metadata cannot be read ({ex.Message.ReplaceLineEndings(" ")}); run 'chronoguard audit repair --audit-dir {options.Directory}' to move the damaged part aside", ex);
            }

            var next = scan.LastSeq + 1;
            var head = scan.LastHash;
            if (scan.Records == 0 && repair is { LastSeq: >= 0 } && repair.LastHash.Length == AuditCodec.HashBytes * 2)
            {
                // A repair that kept nothing readable: the chain goes on from the last hash known good.
                next = repair.LastSeq + 1;
                head = Convert.FromHexString(repair.LastHash);
            }

            var chainId = scan.Marker?.ChainId is { } id && id != "unknown" ? id : AuditHeadMarker.NewChainId();
            new AuditHeadMarker(chainId, next - 1, Convert.ToHexStringLower(head)).Write(options.Directory);
            // Seqs the previous run handed out and never wrote, and those a repair moved aside, are not
            // given out again (SPEC §5): the chain goes on above both, and one reason=lost record names the gap.
            var mark = AuditSeqMark.Read(options.Directory);
            var ringStart = Math.Max(Math.Max(next, mark?.Next ?? 0), repair?.NextSeq ?? 0);
            var writer = new AuditWriter(options, time, options.Directory, bits, dirLock, chainId, log, device, key, scan, next, head, ringStart) { Checkpoints = signer };
            owner = writer;
            writer.ReserveAtStart(ringStart);
            writer._thread.Start();
            writer.RecordCarried(next, ringStart - 1, mark, repair);
            if (repair is not null)
            {
                writer.RecordRepair(repair);
            }

            return writer;
        }
        catch
        {
            log?.Dispose();
            device?.Dispose();
            signer?.Dispose();
            dirLock.Dispose();
            throw;
        }
    }

    /// <summary>The repair's own record, first after the repaired log; the note goes once it is durable.</summary>
    private void RecordRepair(AuditRepairNote repair)
    {
        var record = default(AuditRecord);
        record.Kind = AuditKind.System;
        record.Set(AuditText.Reason, "repair");
        record.Set(AuditText.Path, repair.Detail);
        var seq = Append(ref record);
        var until = Stopwatch.GetTimestamp() + _deadlineTicks;
        while (CommittedSeq < seq && Stopwatch.GetTimestamp() < until && !Faulted)
        {
            Wake();
            Thread.Sleep(1);
        }

        if (CommittedSeq >= seq)
        {
            AuditRepairNote.Delete(_directory);
        }
    }

    /// <summary>
    /// Drains and commits everything appended so far, then stops the writer thread. A writer that cannot
    /// finish (a stuck disk) is abandoned after the commit deadline, so a stop never hangs the process.
    /// </summary>
    public void Dispose()
    {
        if (_stopped)
        {
            return;
        }

        _stopping = true;
        Interlocked.MemoryBarrier();
        ReleaseRoomWaiters();
        Wake();
        // A faulted writer has nothing it can still make durable: a short wait, so SIGTERM stays prompt.
        var joinTicks = Faulted ? Stopwatch.Frequency : _deadlineTicks;
        var finished = _thread.Join(TimeSpan.FromTicks(joinTicks * TimeSpan.TicksPerSecond / Stopwatch.Frequency));
        _stopped = true;
        SealSeqs(finished);
        _watchdog.Dispose();
        Volatile.Read(ref _nextCommit).TrySetResult(false);
        // A faulted FASTER instance can block in Dispose on a flush that never completes: a stop never hangs on it.
        if (finished && Task.Run(CloseLog).Wait(TimeSpan.FromTicks(_deadlineTicks * TimeSpan.TicksPerSecond / Stopwatch.Frequency)))
        {
            _chain.Dispose();
            _wake.Dispose();
        }

        Checkpoints?.Dispose();
        _dirLock.Dispose();
    }
}
