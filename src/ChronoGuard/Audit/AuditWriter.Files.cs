using System.Buffers.Binary;
using System.Globalization;
using FASTER.core;

namespace ChronoGuard.Audit;

/// <summary>
/// The files of the audit directory besides the segments: the FASTER log and its commit files, the
/// segment-size file, the head marker and the notes the chain is owed (system records from the writer).
/// </summary>
internal sealed partial class AuditWriter
{
    /// <summary>The file that records the segment size a directory was created with (readers need it).</summary>
    internal const string SegmentBitsFile = "segment-bits";

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
}
