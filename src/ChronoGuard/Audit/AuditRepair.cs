using System.Globalization;

namespace ChronoGuard.Audit;

/// <summary>
/// <c>chronoguard audit repair</c>: moves a damaged log aside (kept whole, never deleted) and rebuilds
/// the directory from its good prefix, byte for byte, so the chain up to the last good record is
/// unchanged and a writer may start again. The next start writes a chained <c>system</c> record
/// (<c>reason=repair</c>) naming the last good seq and hash and the lost range.
/// </summary>
internal static class AuditRepair
{
    public sealed record Outcome(bool Repaired, string Message);

    /// <summary>Takes the writer lock (never beside a running writer); <see cref="IOException"/> when held.</summary>
    public static Outcome Run(string directory, TimeProvider time)
    {
        if (!Directory.Exists(directory))
        {
            throw new IOException($"{directory}: no such audit directory");
        }

        using var held = AuditDirectoryLock.Acquire(directory);
        var scan = AuditLogScan.Run(directory);
        if (scan.Damage is not { } damage)
        {
            return new Outcome(false, $"{directory}: the audit log is intact (seq {scan.FirstSeq} to {scan.LastSeq}); nothing to repair");
        }

        var stamp = time.GetUtcNow().ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
        var aside = Path.Combine(directory, "damaged-" + stamp);
        for (var n = 2; Directory.Exists(aside); n++)
        {
            aside = Path.Combine(directory, $"damaged-{stamp}-{n}");
        }

        Directory.CreateDirectory(aside);
        foreach (var file in Directory.EnumerateFiles(directory, "audit.log.*"))
        {
            File.Move(file, Path.Combine(aside, Path.GetFileName(file)));
        }

        var commits = Path.Combine(directory, "log-commits");
        if (Directory.Exists(commits))
        {
            Directory.Move(commits, Path.Combine(aside, "log-commits"));
        }

        foreach (var name in new[] { AuditHeadMarker.FileName, AuditWriter.SegmentBitsFile })
        {
            var file = Path.Combine(directory, name);
            if (File.Exists(file))
            {
                File.Copy(file, Path.Combine(aside, name));
            }
        }

        // The good prefix, copied entry by entry from the moved copy into a fresh log: same bytes, same
        // hashes. The moved files read as they did in place, so the same scan yields the same records,
        // also those past FASTER's own end that only the walk of the segment files reached.
        var bits = AuditWriter.ReadSegmentBits(directory) ?? 26;
        var copied = 0L;
        if (scan.Records > 0)
        {
            var (target, targetDevice) = AuditWriter.OpenLog(directory, bits, readOnly: false);
            try
            {
                foreach (var entry in new AuditLogScan(aside, exclusive: true).Entries())
                {
                    if (copied == scan.Records)
                    {
                        break;
                    }

                    if (entry.Payload.Length >= AuditCodec.EntryPrefix + 9)
                    {
                        target.Enqueue(entry.Payload);
                        copied++;
                    }
                }

                target.Commit(spinWait: true);
            }
            finally
            {
                target.Dispose();
                targetDevice.Dispose();
            }
        }

        // Nothing readable: the chain goes on from the last seq/hash the head file knew committed.
        var (lastSeq, lastHash) = scan.Records > 0 || scan.Marker is not { Seq: >= 0 and < long.MaxValue } m
            ? (scan.LastSeq, Convert.ToHexStringLower(scan.LastHash))
            : (m.Seq, m.Hash);
        var lostUpTo = scan.Marker is { Seq: < long.MaxValue } marker && marker.Seq > lastSeq ? $"at least seq {marker.Seq}" : "the end of the damaged log";
        var lostFrom = scan.Records > 0 || lastSeq < 0 ? (lastSeq + 1).ToString(CultureInfo.InvariantCulture) : "its first record";
        var detail = scan.Records > 0 || lastSeq < 0
            ? $"last good seq {lastSeq} hash {lastHash}; lost seq {lostFrom} to {lostUpTo}; damage: {damage.Problem}; the damaged log is kept in {Path.GetFileName(aside)}"
            : $"no record could be read; the head file's seq {lastSeq} hash {lastHash} is taken as the last good; every record up to it was lost; damage: {damage.Problem}; the damaged log is kept in {Path.GetFileName(aside)}";
        var chainId = scan.Marker?.ChainId is { } id && id != "unknown" ? id : AuditHeadMarker.NewChainId();
        new AuditHeadMarker(chainId, lastSeq, lastHash).Write(directory);
        new AuditRepairNote(lastSeq, lastHash, detail).Write(directory);
        return new Outcome(true, $"{directory}: repaired: kept {copied} good records (up to seq {lastSeq}); the damaged log was moved to {aside}; the next start records the repair ({detail})");
    }
}
