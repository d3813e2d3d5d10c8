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
        // The chain goes on above every seq handed out before the damage, so a checkpoint signed or a seq
        // given to a client before it is never reused by another record: the repair record names the gap.
        var highest = HighestSeqHandedOut(directory, scan, lastSeq);
        var next = highest + 1;
        var lost = next > lastSeq + 1 ? $"lost seq {lastSeq + 1} to {highest}" : "no seq lost";
        var detail = scan.Records > 0 || lastSeq < 0
            ? $"last good seq {lastSeq} hash {lastHash}; {lost}; the chain goes on at seq {next}; damage: {damage.Problem}; the damaged log is kept in {Path.GetFileName(aside)}"
            : $"no record could be read; the head file's seq {lastSeq} hash {lastHash} is taken as the last good; every record up to it was lost; {lost}; the chain goes on at seq {next}; damage: {damage.Problem}; the damaged log is kept in {Path.GetFileName(aside)}";
        var chainId = scan.Marker?.ChainId is { } id && id != "unknown" ? id : AuditHeadMarker.NewChainId();
        new AuditHeadMarker(chainId, lastSeq, lastHash).Write(directory);
        new AuditRepairNote(lastSeq, lastHash, detail) { NextSeq = next }.Write(directory);
        return new Outcome(true, $"{directory}: repaired: kept {copied} good records (up to seq {lastSeq}); the damaged log was moved to {aside}; the next start records the repair ({detail})");
    }

    /// <summary>
    /// The highest seq any witness says was handed out: the head file (what the writer knew committed),
    /// the seq-mark (what the writer's ring could hand out), the intact records past the damage, and checkpoints.jsonl (what was signed; its signatures are the
    /// verifier's to check, a seq is enough here).
    /// </summary>
    private static long HighestSeqHandedOut(string directory, AuditLogScan scan, long lastSeq)
    {
        var highest = Math.Max(lastSeq, scan.LastSeq);
        if (scan.Marker is { Seq: < long.MaxValue } marker)
        {
            highest = Math.Max(highest, marker.Seq);
        }

        foreach (var entry in scan.Damage?.Salvaged ?? [])
        {
            if (entry.Payload.Length >= AuditCodec.EntryPrefix + 9)
            {
                highest = Math.Max(highest, System.Buffers.Binary.BinaryPrimitives.ReadInt64BigEndian(entry.Payload.AsSpan(AuditCodec.EntryPrefix + 1)));
            }
        }

        // The writer's seq-mark bounds every seq its ring could have handed out (a client may hold one).
        if (AuditSeqMark.Read(directory) is { Next: > 0 } mark)
        {
            highest = Math.Max(highest, mark.Next - 1);
        }

        var checkpoints = Path.Combine(directory, Checkpoint.FileName);
        if (File.Exists(checkpoints))
        {
            foreach (var line in File.ReadLines(checkpoints))
            {
                if (Checkpoint.Parse(line, out _) is { } checkpoint)
                {
                    highest = Math.Max(highest, checkpoint.Seq);
                }
            }
        }

        return highest;
    }
}
