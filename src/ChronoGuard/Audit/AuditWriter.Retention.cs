using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;

namespace ChronoGuard.Audit;

/// <summary>
/// Retention: the disk the log may use is bounded (<see cref="AuditOptions.MaxBytes"/>, and
/// <see cref="AuditOptions.RetainSegments"/> when set); whole oldest segments are dropped, and the
/// sidecar names each drop in a chained <c>system</c> record (<c>reason=retention</c>).
/// </summary>
internal sealed partial class AuditWriter
{
    private long _retentionDroppedBytes;
    private long _retentionDroppedRecords;

    /// <summary>Log bytes retention dropped since start (whole segments).</summary>
    public long RetentionDroppedBytes => Volatile.Read(ref _retentionDroppedBytes);

    /// <summary>Records retention dropped since start.</summary>
    public long RetentionDroppedRecords => Volatile.Read(ref _retentionDroppedRecords);

    /// <summary>The first seq of the last drop (valid inside <see cref="OnRetention"/>, which names up to the seq before its first kept one).</summary>
    public long LastDroppedFromSeq { get; private set; } = -1;

    /// <summary>
    /// <see cref="AuditOptions.MaxBytes"/> as it applies: unset is half of the filesystem that holds the
    /// directory, measured now; 0 is unbounded. A bound below two segments cannot hold the segment being
    /// written and a whole one before it, so a setting below that is refused in one line (a default below
    /// it, on a filesystem smaller than four segments, keeps two: the filesystem is the tighter bound).
    /// </summary>
    internal static long ResolveMaxBytes(AuditOptions options)
    {
        var least = 2L << options.SegmentSizeBits;
        // A filesystem that cannot be measured leaves the log unbounded, as before.
        var max = options.MaxBytes ?? (HalfOfFileSystem(options.Directory) is > 0 and var half ? Math.Max(half, least) : 0);
        if (max < 0 || (max > 0 && max < least))
        {
            throw new InvalidDataException($"Audit:MaxBytes: {max} is less than two segments of 2^{options.SegmentSizeBits} bytes (allowed: 0 for unbounded, or at least {least})");
        }

        return max;
    }

    private static long HalfOfFileSystem(string directory)
    {
        try
        {
            // DriveInfo on Linux is statvfs of the mount that holds the path.
            return Math.Max(new DriveInfo(Path.GetFullPath(directory)).TotalSize / 2, 0);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return 0;
        }
    }

    /// <summary>
    /// Drops whole oldest segments beyond <see cref="AuditOptions.RetainSegments"/> and beyond what
    /// <see cref="AuditOptions.MaxBytes"/> holds (the segment being written and the next one count whole). FASTER
    /// persists the new begin address with the next commit and deletes the segment files then.
    /// </summary>
    private void ApplyRetention()
    {
        var bits = Options.SegmentSizeBits;
        var keep = Options.RetainSegments > 0 ? Options.RetainSegments : long.MaxValue;
        if (Options.MaxBytes is > 0 and var max)
        {
            // FASTER starts the next segment before the commit that lets the oldest go: one whole segment
            // of the bound is left for it, so the files never exceed the bound even for that moment.
            keep = Math.Min(keep, Math.Max(1, (max >> bits) - 1));
        }

        if (keep == long.MaxValue)
        {
            return;
        }

        var tailSegment = _log.TailAddress >> bits;
        var firstKept = tailSegment - keep + 1;
        var begin = _log.BeginAddress;
        if (firstKept <= begin >> bits)
        {
            return;
        }

        var until = firstKept << bits;
        var from = FirstSeqFrom(FirstReadableAddress(_log, _directory, bits), until);
        // The first record at or after the cut becomes the anchor; report it so it can be recorded.
        using var iterator = _log.Scan(until, _log.TailAddress);
        if (iterator.GetNext(out var entry, out var length, out _) && length >= AuditCodec.EntryPrefix + 9)
        {
            var seq = BinaryPrimitives.ReadInt64BigEndian(entry.AsSpan(AuditCodec.EntryPrefix + 1));
            _log.TruncateUntilPageStart(until);
            // FASTER deletes the segment files at once but records the new begin address only in
            // the next commit; commit now so the persisted begin never points into a deleted file.
            var commit = _log.CommitAsync().AsTask();
            if (!commit.Wait(TimeSpan.FromTicks(_deadlineTicks * TimeSpan.TicksPerSecond / Stopwatch.Frequency)))
            {
                throw new IOException($"the retention commit did not complete within Audit:CommitTimeoutMs ({Options.CommitTimeoutMs} ms)");
            }

            DeleteDroppedSegments(_log.BeginAddress);
            Interlocked.Add(ref _retentionDroppedBytes, until - begin);
            if (from >= 0 && from < seq)
            {
                Interlocked.Add(ref _retentionDroppedRecords, seq - from);
            }

            LastDroppedFromSeq = from;
            OnRetention?.Invoke(seq, entry.AsSpan(0, AuditCodec.HashBytes).ToArray());
        }
    }

    /// <summary>The seq of the first record in [<paramref name="from"/>, <paramref name="until"/>), -1 when none.</summary>
    private long FirstSeqFrom(long from, long until)
    {
        using var iterator = _log.Scan(from, until);
        while (iterator.GetNext(out var entry, out var length, out _))
        {
            if (length >= AuditCodec.EntryPrefix + 9)
            {
                return BinaryPrimitives.ReadInt64BigEndian(entry.AsSpan(AuditCodec.EntryPrefix + 1));
            }
        }

        return -1;
    }

    /// <summary>
    /// FASTER removes dropped segment files from an epoch action that may run only after the writer
    /// stopped (seen as six segments left with two retained); the begin address is committed, so the
    /// files before it are no longer part of the log and are removed here, deterministically.
    /// </summary>
    private void DeleteDroppedSegments(long beginAddress)
    {
        foreach (var file in Directory.EnumerateFiles(_directory, "audit.log.*"))
        {
            if (long.TryParse(Path.GetExtension(file).AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out var segment) && ((segment + 1) << _bits) <= beginAddress)
            {
                File.Delete(file);
            }
        }
    }
}
