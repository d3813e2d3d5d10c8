using System.Buffers.Binary;
using System.Diagnostics;
using FASTER.core;

namespace ChronoGuard.Audit;

/// <summary>
/// Persists the audit chain. Request handlers append to a lock-free ring and learn their sequence
/// number at once; one dedicated writer thread drains the ring in batches, hashes the chain, appends
/// to a FASTER log and commits once per batch (group commit), then advances the committed watermark
/// that <see cref="WaitDurableAsync"/> waiters (commit-before-forward) observe.
/// </summary>
internal sealed class AuditWriter : IDisposable
{

    private readonly FasterLog _log;
    private readonly IDevice _device;
    private readonly AuditRing _ring;

    // Where Claim points when the writer is gone: racy writes from many threads, never read.
    private AuditRecord _scratch;
    private readonly int _maxBatch;
    private readonly AuditChain _chain;
    private readonly TimeProvider _time;
    private readonly Thread _thread;
    private readonly ManualResetEventSlim _wake = new(false);
    private readonly long _commitIntervalTicks;
    private readonly byte[] _prevHash = new byte[AuditCodec.HashBytes];
    private TaskCompletionSource _nextCommit = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _committedSeq;
    // Seq and hash published as one immutable pair: two separate fields could be read torn.
    private Tuple<long, byte[]> _committedHead;
    private long _recordsTotal;
    private long _backPressure;
    private int _sleeping;
    private volatile bool _stopping;
    private volatile bool _faulted;

    private AuditWriter(AuditOptions options, TimeProvider time, FasterLog log, IDevice device, byte[]? key, long nextSeq, byte[] headHash)
    {
        Options = options;
        CommitBeforeForward = string.Equals(options.Durability, "commit-before-forward", StringComparison.OrdinalIgnoreCase);
        _time = time;
        _log = log;
        _device = device;
        _chain = new AuditChain(key);
        _ring = new AuditRing(options.QueueCapacity, nextSeq);
        headHash.CopyTo(_prevHash, 0);
        _committedSeq = nextSeq - 1;
        _committedHead = Tuple.Create(nextSeq - 1, headHash);
        RecoveredRecords = nextSeq;
        _commitIntervalTicks = Math.Max(1, options.CommitIntervalMs) * Stopwatch.Frequency / 1000;
        _maxBatch = Math.Clamp(options.MaxBatch, 1, 65_536);
        // A dedicated thread, not a Task on the pool: the writer blocks in FASTER's commit (fsync) by
        // design, and a pool thread doing that under load would starve request continuations.
        _thread = new Thread(Run) { Name = "chronoguard-audit-writer", IsBackground = true };
    }

    public AuditOptions Options { get; }

    public bool CommitBeforeForward { get; }

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

    public bool Healthy => !_faulted && _thread.IsAlive;

    /// <summary>Called with the Stopwatch ticks of every commit (for the commit-duration histogram).</summary>
    public Action<long>? OnCommit { get; set; }

    /// <summary>Signs the committed head into checkpoints.jsonl when Audit:SigningKeyFile is set.</summary>
    public CheckpointSigner? Checkpoints { get; private set; }

    /// <summary>Called on the writer thread when retention dropped segments: the first kept seq and its prevHash.</summary>
    public Action<long, byte[]>? OnRetention { get; set; }

    /// <summary>The file that records the segment size a directory was created with (readers need it).</summary>
    internal const string SegmentBitsFile = "segment-bits";

    public static AuditWriter Open(AuditOptions options, TimeProvider time)
    {
        Directory.CreateDirectory(options.Directory);
        var key = AuditChain.ReadKey(options.HmacKeyFile);
        var signer = CheckpointSigner.Open(options, time);
        // The segment size is fixed at creation: FASTER addresses files by it, so a later, different
        // setting would misread the log. The first value written wins.
        var bits = ReadSegmentBits(options.Directory) ?? options.SegmentSizeBits;
        if (!File.Exists(Path.Combine(options.Directory, SegmentBitsFile)))
        {
            File.WriteAllText(Path.Combine(options.Directory, SegmentBitsFile), bits.ToString(System.Globalization.CultureInfo.InvariantCulture) + "\n");
        }

        options.SegmentSizeBits = bits;
        var (log, device) = OpenLog(options.Directory, bits, readOnly: false);
        var (next, head) = RecoverHead(log, FirstReadableAddress(log, options.Directory, bits));
        var writer = new AuditWriter(options, time, log, device, key, next, head) { Checkpoints = signer };
        writer._thread.Start();
        return writer;
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

    internal static (FasterLog Log, IDevice Device) OpenLog(string directory, int segmentSizeBits, bool readOnly)
    {
        var device = Devices.CreateLogDevice(Path.Combine(directory, "audit.log"), preallocateFile: false, deleteOnClose: false, recoverDevice: true);
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
                segmentSizeBits),
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

    /// <summary>Appends without waiting; false when the ring is full (the caller must retry, not drop).</summary>
    public bool TryAppend(ref AuditRecord record, out long seq)
    {
        if (record.TimestampNs == 0)
        {
            record.TimestampNs = (_time.GetUtcNow().UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100;
        }

        if (!_ring.TryAppend(ref record, out seq))
        {
            Interlocked.Increment(ref _backPressure);
            Wake();
            return false;
        }

        if (Volatile.Read(ref _sleeping) != 0)
        {
            Wake();
        }

        return true;
    }

    /// <summary>Appends, waiting while the ring is full: back-pressure on the request, never a lost record.</summary>
    public long Append(ref AuditRecord record)
    {
        var spin = default(SpinWait);
        long seq;
        while (!TryAppend(ref record, out seq))
        {
            if (_faulted || _stopping)
            {
                return -1;
            }

            spin.SpinOnce(sleep1Threshold: 20);
        }

        return seq;
    }

    /// <summary>
    /// The allocation- and copy-free append for the request path: claims the next seq (waiting while
    /// the ring is full) and returns its slot, cleared and stamped, to fill in place; the caller must
    /// call <see cref="Publish"/> with <paramref name="seq"/>, in a finally. When the writer has failed
    /// or stopped, seq is -1 and the slot is a scratch record that is never written out.
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
            if (_faulted || _stopping)
            {
                seq = -1;
                return ref _scratch;
            }

            spin.SpinOnce(sleep1Threshold: 20);
        }

        ref var record = ref _ring.At(seq);
        record.Reset();
        record.Seq = seq;
        record.TimestampNs = (_time.GetUtcNow().UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100;
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
        if (Volatile.Read(ref _sleeping) != 0)
        {
            Wake();
        }
    }

    /// <summary>Completes when <paramref name="seq"/> is durably committed.</summary>
    public ValueTask WaitDurableAsync(long seq)
    {
        if (seq <= Volatile.Read(ref _committedSeq) || seq < 0)
        {
            return default;
        }

        return new ValueTask(WaitSlowAsync(seq));
    }

    private async Task WaitSlowAsync(long seq)
    {
        Wake();
        while (seq > Volatile.Read(ref _committedSeq))
        {
            if (_faulted)
            {
                throw new IOException("audit writer failed; the record cannot be made durable");
            }

            // One completion source per commit, shared by every waiter of that commit.
            var next = Volatile.Read(ref _nextCommit);
            if (seq <= Volatile.Read(ref _committedSeq))
            {
                break;
            }

            await next.Task.ConfigureAwait(false);
        }
    }

    private void Wake() => _wake.Set();

    private void Run()
    {
        Span<byte> entry = stackalloc byte[AuditCodec.EntryPrefix + AuditCodec.MaxCanonicalBytes];
        Span<byte> hash = stackalloc byte[AuditCodec.HashBytes];
        var lastSeq = Volatile.Read(ref _committedSeq);
        var pendingSince = 0L;
        // One commit in flight at a time, and the writer keeps chaining while the device works: the next
        // commit then covers everything enqueued meanwhile (group commit without a stall per batch).
        Task? inflight = null;
        long inflightSeq = 0, inflightStarted = 0;
        byte[]? inflightHash = null;
        try
        {
            while (true)
            {
                var drained = 0;
                while (drained < _maxBatch && _ring.TryPeek(out var seq))
                {
                    ref var record = ref _ring.Head;
                    var n = AuditCodec.Encode(record, entry[AuditCodec.EntryPrefix..]);
                    var canonical = entry.Slice(AuditCodec.EntryPrefix, n);
                    _chain.Compute(_prevHash, canonical, hash);
                    _prevHash.CopyTo(entry);
                    hash.CopyTo(entry[AuditCodec.HashBytes..]);
                    _log.Enqueue(entry[..(AuditCodec.EntryPrefix + n)]);
                    hash.CopyTo(_prevHash);
                    lastSeq = seq;
                    _ring.Advance();
                    drained++;
                }

                if (inflight is { IsCompleted: true })
                {
                    inflight.GetAwaiter().GetResult();
                    Published(inflightSeq, inflightHash!, Stopwatch.GetTimestamp() - inflightStarted);
                    inflight = null;
                }

                var now = Stopwatch.GetTimestamp();
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
                    inflight = _log.CommitAsync().AsTask();
                    inflight.ContinueWith(static (_, w) => ((AuditWriter)w!).Wake(), this, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
                    pendingSince = 0;
                }

                if (drained == _maxBatch)
                {
                    continue;
                }

                if (_stopping && inflight is null && !pending && !_ring.TryPeek(out _))
                {
                    return;
                }

                // Nothing to drain: sleep until an append or a finished commit wakes us, or the interval is up.
                Volatile.Write(ref _sleeping, 1);
                if (!_ring.TryPeek(out _) && inflight is not { IsCompleted: true })
                {
                    var wait = inflight is null && pending ? Math.Max(0, (pendingSince + _commitIntervalTicks - now) * 1000 / Stopwatch.Frequency) : 1000;
                    _wake.Wait((int)Math.Max(1, wait));
                }

                _wake.Reset();
                Volatile.Write(ref _sleeping, 0);
            }
        }
        catch (Exception ex) when (ex is IOException or FasterException or ObjectDisposedException or AggregateException)
        {
            _faulted = true;
            Volatile.Read(ref _nextCommit).TrySetException(ex);
        }
    }

    /// <summary>A commit finished: everything up to <paramref name="lastSeq"/> is durable.</summary>
    private void Published(long lastSeq, byte[] hash, long elapsedTicks)
    {
        OnCommit?.Invoke(elapsedTicks);
        Interlocked.Add(ref _recordsTotal, lastSeq - Volatile.Read(ref _committedSeq));
        Volatile.Write(ref _committedHead, Tuple.Create(lastSeq, hash));
        Volatile.Write(ref _committedSeq, lastSeq);
        var done = Interlocked.Exchange(ref _nextCommit, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        done.TrySetResult();
        Checkpoints?.OnCommitted(lastSeq, hash, final: _stopping);
        ApplyRetention();
    }

    /// <summary>
    /// Drops whole segments beyond <see cref="AuditOptions.RetainSegments"/>. FASTER persists the new
    /// begin address with the next commit and deletes the segment files then.
    /// </summary>
    private void ApplyRetention()
    {
        var keep = Options.RetainSegments;
        if (keep <= 0)
        {
            return;
        }

        var bits = Options.SegmentSizeBits;
        var tailSegment = _log.TailAddress >> bits;
        var firstKept = tailSegment - keep + 1;
        if (firstKept <= _log.BeginAddress >> bits)
        {
            return;
        }

        var until = firstKept << bits;
        // The first record at or after the cut becomes the anchor; report it so it can be recorded.
        using (var iterator = _log.Scan(until, _log.TailAddress))
        {
            if (iterator.GetNext(out var entry, out var length, out _) && length >= AuditCodec.EntryPrefix + 9)
            {
                var seq = BinaryPrimitives.ReadInt64BigEndian(entry.AsSpan(AuditCodec.EntryPrefix + 1));
                _log.TruncateUntilPageStart(until);
                // FASTER deletes the segment files at once but records the new begin address only in
                // the next commit; commit now so the persisted begin never points into a deleted file.
                _log.Commit(spinWait: true);
                OnRetention?.Invoke(seq, entry.AsSpan(0, AuditCodec.HashBytes).ToArray());
            }
        }
    }

    /// <summary>Drains and commits everything appended so far, then stops the writer thread.</summary>
    public void Dispose()
    {
        if (!_stopping)
        {
            _stopping = true;
            Wake();
            _thread.Join(TimeSpan.FromSeconds(30));
        }

        _log.Dispose();
        _device.Dispose();
        _chain.Dispose();
        _wake.Dispose();
        Checkpoints?.Dispose();
    }
}
