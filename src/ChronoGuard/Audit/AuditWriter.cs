using System.Buffers.Binary;
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

    private const long MarkerIntervalMs = 1000;

    private readonly string _directory;
    private readonly int _bits;
    private readonly AuditDirectoryLock _dirLock;
    private readonly string _chainId;
    private FasterLog _log;
    private IDevice _device;
    private readonly AuditRing _ring;

    // Where Claim points when it cannot queue: racy writes from many threads, never read.
    private AuditRecord _scratch;
    private readonly int _maxBatch;
    private readonly AuditChain _chain;
    private readonly TimeProvider _time;
    private readonly Thread _thread;
    private readonly Timer _watchdog;
    private readonly ManualResetEventSlim _wake = new(false);
    private readonly long _commitIntervalTicks;
    private readonly long _deadlineTicks;
    private readonly byte[] _prevHash = new byte[AuditCodec.HashBytes];
    // Entries appended to FASTER and not yet durable: those the commit in flight covers, and those after
    // it. Kept to append again after a fault; dropped when their commit completes.
    private EntryBuffer _covered = new();
    private EntryBuffer _open = new();
    private TaskCompletionSource<bool> _nextCommit = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _committedSeq;
    private long _committedAddress;
    // Seq and hash published as one immutable pair: two separate fields could be read torn.
    private Tuple<long, byte[]> _committedHead;
    private long _recordsTotal;
    private long _backPressure;
    private long _faultsTotal;
    private long _unrecordedTotal;
    private long _unrecordedPending;
    private long _unrecordedFirstNs;
    private long _unrecordedLastNs;
    private long _progressTicks;
    private long _takenSeq;
    private long _faultedAtNs;
    private int _sleeping;
    private int _faulted;
    private string? _faultCause;
    private string? _recoveredNote;
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

    /// <summary>Called with the Stopwatch ticks of every commit (for the commit-duration histogram).</summary>
    public Action<long>? OnCommit { get; set; }

    /// <summary>Signs the committed head into checkpoints.jsonl when Audit:SigningKeyFile is set.</summary>
    public CheckpointSigner? Checkpoints { get; private set; }

    /// <summary>Called on the writer thread when retention dropped segments: the first kept seq and its prevHash.</summary>
    public Action<long, byte[]>? OnRetention { get; set; }

    /// <summary>Called once per fault episode with its cause (from the writer thread or the watchdog).</summary>
    public Action<string>? OnFault { get; set; }

    /// <summary>Called when a faulted writer is healthy again, with what the episode cost.</summary>
    public Action<string>? OnRecovered { get; set; }

    /// <summary>The file that records the segment size a directory was created with (readers need it).</summary>
    internal const string SegmentBitsFile = "segment-bits";

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
    /// Where a scan can start: the log's begin address, or the first segment still on disk when a crash
    /// fell between the deletion of old segments and the commit that records it.
    /// </summary>
    internal static long FirstReadableAddress(FasterLog log, string directory, int bits)
    {
        var lowest = long.MaxValue;
        foreach (var file in Directory.EnumerateFiles(directory, "audit.log.*"))
        {
            if (long.TryParse(Path.GetExtension(file).AsSpan(1), System.Globalization.CultureInfo.InvariantCulture, out var segment))
            {
                lowest = Math.Min(lowest, segment);
            }
        }

        return lowest == long.MaxValue ? log.BeginAddress : Math.Max(log.BeginAddress, lowest << bits);
    }

    internal static int? ReadSegmentBits(string directory)
    {
        var file = Path.Combine(directory, SegmentBitsFile);
        return File.Exists(file) && int.TryParse(File.ReadAllText(file).Trim(), System.Globalization.CultureInfo.InvariantCulture, out var bits) ? bits : null;
    }

    internal static (FasterLog Log, IDevice Device) OpenLog(string directory, int segmentSizeBits, bool readOnly, Action<string>? onCommitFileFailure = null, Func<bool>? isCurrent = null)
    {
        // Not Devices.CreateLogDevice: its Linux device keeps two descriptors per segment ever written.
        var device = new BoundedFileDevice(Path.Combine(directory, "audit.log"), readOnly);
        var settings = new FasterLogSettings
        {
            LogDevice = device,
            // The metadata file is rewritten every 1,000 commits and whenever the segment changes; in
            // between, fast commit records in the log carry it, and recovery scans forward from the last
            // file to the last record.
            LogCommitManager = new SegmentAwareCommitManager(
                new DeviceLogCommitCheckpointManager(
                    new LocalStorageNamedDeviceFactory(),
                    new DefaultCheckpointNamingScheme(directory),
                    removeOutdated: true,
                    fastCommitThrottleFreq: 1000),
                segmentSizeBits,
                directory,
                throttle: 1000,
                readOnly,
                onCommitFileFailure,
                isCurrent),
            // 512 KiB pages, 2 MiB in memory: FASTER pins and zeroes its page buffers, so this is
            // resident from the start. Measured (audit-throughput): 256 KiB pages fall to ~0.8M
            // records/s from page flips, 512 KiB and 1 MiB both hold ~1M; the smaller costs 2 MiB less.
            PageSizeBits = 19,
            MemorySizeBits = 21,
            SegmentSizeBits = segmentSizeBits,
            ReadOnlyMode = readOnly,
            // Fast commit writes the commit metadata into the log itself (one device write per group
            // commit instead of a new metadata file each time); FASTER requires per-entry checksums for it.
            FastCommitMode = true,
            LogChecksum = LogChecksumType.PerEntry,
            AutoRefreshSafeTailAddress = readOnly,
        };
        return (new FasterLog(settings), device);
    }

    /// <summary>Scans the recovered log to its tail: the next seq and the last hash (zeros when empty).</summary>
    internal static (long Next, byte[] Hash) RecoverHead(FasterLog log, long from)
    {
        var next = 0L;
        var hash = new byte[AuditCodec.HashBytes];
        using var iterator = log.Scan(from, log.TailAddress);
        while (iterator.GetNext(out var entry, out var length, out _))
        {
            if (length < AuditCodec.EntryPrefix + 9)
            {
                continue;
            }

            next = BinaryPrimitives.ReadInt64BigEndian(entry.AsSpan(AuditCodec.EntryPrefix + 1)) + 1;
            hash = entry.AsSpan(AuditCodec.HashBytes, AuditCodec.HashBytes).ToArray();
        }

        return (next, hash);
    }

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
        if (Volatile.Read(ref _sleeping) != 0)
        {
            Wake();
        }

        return true;
    }

    /// <summary>
    /// Appends, waiting while the ring is full (back-pressure, never a lost record) unless the writer
    /// has faulted or stopped: then <see cref="Unrecorded"/>, and the record is counted as unrecorded.
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
        if (Volatile.Read(ref _sleeping) != 0)
        {
            Wake();
        }
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
                var drained = Drain();
                if (inflight is { IsCompleted: true })
                {
                    var done = inflight;
                    inflight = null;
                    done.GetAwaiter().GetResult();
                    _covered.Clear();
                    Published(inflightSeq, inflightHash!, inflightTail, Stopwatch.GetTimestamp() - inflightStarted);
                }

                var now = Stopwatch.GetTimestamp();
                var lastSeq = Volatile.Read(ref _takenSeq);
                var covered = inflight is null ? Volatile.Read(ref _committedSeq) : inflightSeq;
                var pending = lastSeq > covered;
                if (pending && pendingSince == 0)
                {
                    pendingSince = now;
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
                // read before this store is visible.
                Interlocked.Exchange(ref _sleeping, 1);
                if (!_ring.TryPeek(out _) && inflight is not { IsCompleted: true } && Volatile.Read(ref _faulted) == 0)
                {
                    var wait = inflight is null && pending ? Math.Max(0, (pendingSince + _commitIntervalTicks - now) * 1000 / Stopwatch.Frequency) : Options.IdleWaitMs;
                    _wake.Wait((int)Math.Max(1, wait));
                }

                _wake.Reset();
                Volatile.Write(ref _sleeping, 0);
            }
            catch (Exception ex) when (IsWriteError(ex))
            {
                Fault(Cause(ex));
            }
        }
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
            KeepMonotonic(ref record, seq);
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

    /// <summary>Idle housekeeping: the head file, the unrecorded count and a check that the files are there.</summary>
    private void Housekeeping()
    {
        CheckFiles();
        WriteMarker();
        WriteNotes();
    }

    /// <summary>What the chain must be told after a fault: that it happened, and how many records it cost.</summary>
    private void WriteNotes()
    {
        if (Volatile.Read(ref _recoveredNote) is { } note && WriteSystem("writer_fault", note))
        {
            Volatile.Write(ref _recoveredNote, null);
        }

        var unrecorded = Volatile.Read(ref _unrecordedPending);
        if (unrecorded > 0)
        {
            var from = FormatNs(Volatile.Read(ref _unrecordedFirstNs));
            var until = FormatNs(Volatile.Read(ref _unrecordedLastNs));
            if (WriteSystem("unrecorded", $"{unrecorded} requests were not recorded between {from} and {until}: the audit writer had failed ({FaultCause})"))
            {
                Interlocked.Add(ref _unrecordedPending, -unrecorded);
                Volatile.Write(ref _unrecordedFirstNs, 0);
            }
        }
    }

    private static string FormatNs(long ns) =>
        DateTimeOffset.UnixEpoch.AddTicks(ns / 100).ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    /// <summary>A system record from the writer itself: claimed without waiting (never on its own full ring).</summary>
    private bool WriteSystem(string reason, string detail)
    {
        if (!_ring.TryClaim(out var seq))
        {
            return false;
        }

        ref var record = ref _ring.At(seq);
        record.Reset();
        record.Seq = seq;
        record.TimestampNs = NowNs();
        record.Kind = AuditKind.System;
        record.Set(AuditText.Reason, reason);
        record.Set(AuditText.Path, detail);
        _ring.Publish(seq);
        return true;
    }

    private void WriteMarker()
    {
        var (seq, hash) = Head;
        new AuditHeadMarker(_chainId, seq, Convert.ToHexStringLower(hash)).Write(_directory);
    }

    private bool _sawCommits;

    /// <summary>Deleting the log under a running writer raises no I/O error (the files stay open): look.</summary>
    private void CheckFiles()
    {
        var commits = Path.Combine(_directory, "log-commits");
        if (Directory.Exists(commits))
        {
            _sawCommits = true;
        }
        else if (_sawCommits)
        {
            // FASTER makes the directory at its first commit: missing before that is a new log, not a deletion.
            throw new IOException($"{commits} was deleted under the running writer");
        }

        // The segment of the last flushed byte, not of the tail: FASTER creates a segment's file when it
        // first flushes into it, so right after the tail crossed into a new segment there is no file yet
        // (taken for a deletion, that faulted a healthy writer about one run in three).
        var flushed = _log.FlushedUntilAddress;
        if (flushed > _log.BeginAddress)
        {
            var segment = Path.Combine(_directory, "audit.log." + ((flushed - 1) >> _bits).ToString(CultureInfo.InvariantCulture));
            if (!File.Exists(segment))
            {
                throw new IOException($"{segment} was deleted under the running writer");
            }
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

        var delayMs = 50;
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
            catch (Exception ex) when (IsWriteError(ex))
            {
                Volatile.Write(ref _faultCause, Cause(ex));
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

    private static string Cause(Exception ex)
    {
        var inner = ex is AggregateException { InnerException: { } first } ? first : ex;
        return inner.Message.ReplaceLineEndings(" ");
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
