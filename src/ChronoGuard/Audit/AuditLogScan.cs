using System.Buffers.Binary;
using System.Globalization;
using FASTER.core;

namespace ChronoGuard.Audit;

/// <summary>
/// Reads an audit directory to its readable end and compares that end with what the directory says was
/// committed: a record that fails its checksum, a missing segment between the first kept one and the
/// tail, unreadable or missing commit metadata, or a readable end short of the <c>head</c> file is
/// <see cref="Damage"/>. The writer runs it at start (and refuses to append over damage); verify and
/// export run <see cref="Run(string, Action{AuditReader.Item}?)"/>, which opens the log read-only and
/// never takes the writer's lock.
/// </summary>
internal sealed class AuditLogScan
{
    /// <summary>Records read before the readable end.</summary>
    public long Records { get; private set; }

    /// <summary>The first seq read (-1 when none).</summary>
    public long FirstSeq { get; private set; } = -1;

    /// <summary>The last good seq (-1 when none).</summary>
    public long LastSeq { get; private set; } = -1;

    /// <summary>The hash of the last good record (32 zero bytes when none).</summary>
    public byte[] LastHash { get; private set; } = new byte[AuditCodec.HashBytes];

    /// <summary>The log address where the scan started.</summary>
    public long StartAddress { get; private set; }

    /// <summary>The log address just past the last good record (the readable end).</summary>
    public long ReadableEnd { get; private set; }

    /// <summary>The tail the commit metadata recovered to.</summary>
    public long CommittedTail { get; private set; }

    /// <summary>The head file, if the directory has one.</summary>
    public AuditHeadMarker? Marker { get; private set; }

    /// <summary>Null when the log reads to its committed tail and reaches the head file.</summary>
    public LogDamage? Damage { get; private set; }

    /// <summary>
    /// Scans a directory read-only (safe beside a running writer). <paramref name="onRecord"/> sees
    /// every good record in order; damage is returned, not thrown. Throws <see cref="IOException"/>
    /// only when <paramref name="directory"/> is not an audit directory at all.
    /// </summary>
    public static AuditLogScan Run(string directory, Action<AuditReader.Item>? onRecord = null) => Run(directory, onRecord, requireLog: true);

    /// <summary>
    /// The writer's scan at start, before it opens the log for writing: FASTER verifies checksums only
    /// when it reads from disk, and a writable instance holds the tail page in memory, so only a
    /// read-only instance sees a damaged record. A new, empty directory is an empty scan.
    /// </summary>
    internal static AuditLogScan Run(string directory, Action<AuditReader.Item>? onRecord, bool requireLog)
    {
        var scan = new AuditLogScan { Marker = AuditHeadMarker.Read(directory) };
        var commits = Path.Combine(directory, "log-commits");
        if (!Directory.Exists(commits) && scan.Marker is null && !HasSegments(directory))
        {
            return requireLog ? throw new IOException($"{directory}: not an audit directory (no log-commits)") : scan;
        }

        var bits = AuditWriter.ReadSegmentBits(directory) ?? 26;
        if (scan.CheckMetadata(directory, commits))
        {
            FasterLog? log = null;
            IDevice? device = null;
            try
            {
                (log, device) = AuditWriter.OpenLog(directory, bits, readOnly: true);
                log.RecoverReadOnlyAsync().AsTask().GetAwaiter().GetResult();
                scan.Walk(log, directory, bits, log.CommittedUntilAddress, onRecord);
            }
            catch (FasterException ex)
            {
                scan.SetDamage(LogDamageKind.CommitMetadata, scan.LastSeq, scan.ReadableEnd, $"the commit metadata in {commits} cannot be read ({Plain(ex)})");
            }
            finally
            {
                log?.Dispose();
                device?.Dispose();
            }
        }

        scan.CompareWithMarker();
        if (scan.Damage is null && scan.Records > 0 && AuditDamageScan.Check(directory, bits, scan.ReadableEnd) is { } found)
        {
            // The verifier's reading of the commit files and segments: whatever `verify` calls damage
            // the writer must refuse too, so the two can never disagree about a log.
            scan.SetDamage(LogDamageKind.CommitMetadata, scan.LastSeq, scan.ReadableEnd, $"{found.Where}: {found.Problem}");
        }

        return scan;
    }

    /// <summary>One line for a refusal or a report: where the readable log ends and what is wrong.</summary>
    public string Describe(string directory) => Damage is not { } d
        ? $"{directory}: the audit log is intact"
        : $"{directory}: the audit log is damaged: {d.Problem}; the last good record is seq {d.LastGoodSeq} (log address {d.Address})";

    // FASTER creates an empty first segment as soon as a log is opened; only bytes in one mean a log was written.
    private static bool HasSegments(string directory) => Directory.EnumerateFiles(directory, "audit.log.*").Any(f => new FileInfo(f).Length > 0);

    private bool CheckMetadata(string directory, string commits)
    {
        var hasCommits = Directory.Exists(commits) && Directory.EnumerateFiles(commits, "commit.*").Any();
        if (!hasCommits && HasSegments(directory))
        {
            SetDamage(LogDamageKind.CommitMetadata, -1, 0, $"log segments exist but the commit metadata ({commits}) is missing or empty");
            return false;
        }

        return hasCommits;
    }

    private void Walk(FasterLog log, string directory, int bits, long tail, Action<AuditReader.Item>? onRecord)
    {
        CommittedTail = tail;
        var start = AuditWriter.FirstReadableAddress(log, directory, bits);
        StartAddress = start;
        ReadableEnd = start;
        // A missing or short segment: read what comes before it, and report the damage where it starts.
        var missing = MissingSegment(directory, bits, start, tail, out var scanUntil);
        // FASTER's own commit records are skipped by the iterator, so a clean scan may end a little
        // before the tail; a scan cut short by damage throws instead (or falls short of the head file).
        try
        {
            using var iterator = log.Scan(start, scanUntil);
            while (iterator.GetNext(out var raw, out var length, out _, out var next))
            {
                if (length < AuditCodec.EntryPrefix + 9)
                {
                    ReadableEnd = next;
                    continue;
                }

                var seq = BinaryPrimitives.ReadInt64BigEndian(raw.AsSpan(AuditCodec.EntryPrefix + 1));
                if (FirstSeq < 0)
                {
                    FirstSeq = seq;
                }

                LastSeq = seq;
                LastHash = raw.AsSpan(AuditCodec.HashBytes, AuditCodec.HashBytes).ToArray();
                Records++;
                ReadableEnd = next;
                if (onRecord is not null)
                {
                    var canonical = raw.AsSpan(AuditCodec.EntryPrefix, length - AuditCodec.EntryPrefix).ToArray();
                    var entry = AuditCodec.Decode(canonical) ?? new AuditEntry { Seq = -1 };
                    entry.PrevHash = raw.AsSpan(0, AuditCodec.HashBytes).ToArray();
                    entry.Hash = LastHash;
                    onRecord(new AuditReader.Item(entry, canonical));
                }
            }

            if (missing is not null)
            {
                SetDamage(LogDamageKind.MissingSegment, LastSeq, ReadableEnd, missing);
            }
        }
        catch (FasterException ex)
        {
            SetDamage(LogDamageKind.Unreadable, LastSeq, ReadableEnd, $"the record at log address {ReadableEnd} fails its checksum or cannot be read ({Plain(ex)}), so everything from there to the committed tail {tail} is unreadable");
        }
    }

    private static string? MissingSegment(string directory, int bits, long start, long tail, out long readableUntil)
    {
        readableUntil = tail;
        if (tail <= start)
        {
            return null;
        }

        var last = (tail - 1) >> bits;
        for (var segment = start >> bits; segment <= last; segment++)
        {
            var file = Path.Combine(directory, "audit.log." + segment.ToString(CultureInfo.InvariantCulture));
            readableUntil = Math.Max(start, segment << bits);
            if (!File.Exists(file))
            {
                return $"segment file {file} (log addresses {segment << bits} to {((segment + 1) << bits) - 1}) is missing";
            }

            // Every segment but the tail's is written to its end; the tail's must reach the tail.
            var needed = segment < last ? 1L << bits : tail - (segment << bits);
            var length = new FileInfo(file).Length;
            if (length < needed)
            {
                readableUntil = Math.Max(start, (segment << bits) + length);
                return $"segment file {file} is {length} bytes, shorter than the {needed} the committed log needs";
            }
        }

        readableUntil = tail;
        return null;
    }

    private void CompareWithMarker()
    {
        if (Damage is not null || Marker is not { } marker || marker.Seq <= LastSeq)
        {
            return;
        }

        if (marker.Seq == long.MaxValue)
        {
            SetDamage(LogDamageKind.ShortOfHead, LastSeq, ReadableEnd, $"the head file ({AuditHeadMarker.FileName}) cannot be read");
            return;
        }

        SetDamage(
            LogDamageKind.ShortOfHead,
            LastSeq,
            ReadableEnd,
            Records == 0
                ? $"the directory held a chain up to seq {marker.Seq} (head file, chain {marker.ChainId}) but no record of it can be read: its log files are gone or unreadable"
                : $"the readable log ends at seq {LastSeq} but the head file says seq {marker.Seq} was committed: committed records are missing or unreadable");
    }

    private void SetDamage(LogDamageKind kind, long lastGood, long address, string problem) =>
        Damage ??= new LogDamage(kind, lastGood, address, problem);

    private static string Plain(Exception ex) => ex.Message.ReplaceLineEndings(" ").TrimEnd('.');
}
