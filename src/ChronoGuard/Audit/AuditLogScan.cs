using System.Buffers.Binary;
using FASTER.core;

namespace ChronoGuard.Audit;

/// <summary>
/// The one reading of an audit directory: what is readable (FASTER's read-only recovery and scan), what
/// was committed (every commit file and commit record, read by their layout in <see cref="FasterLogFiles"/>,
/// and the <c>head</c> file), and where and why the two differ (<see cref="Damage"/>). FASTER takes the
/// first entry it cannot read for the end of the log, so a flipped byte, a shortened or a missing segment
/// would read as a shorter valid log: past the end FASTER reads, the segment files are walked entry by
/// entry, and anything committed beyond the first unreadable entry is damage. The writer runs it at start
/// and refuses to append over damage, repair moves the damage aside, verify and export read their records
/// through <see cref="Entries"/>. It opens the log read-only and never takes the writer's lock, so it is
/// safe beside a running writer (and a writable FASTER instance holds its tail page in memory, where
/// checksums are not verified: only a read-only one sees a damaged record).
/// </summary>
internal sealed class AuditLogScan(string directory, long fromAddress = 0, bool requireLog = true, bool exclusive = false)
{
    // FASTER's first valid log address: the first entry of a log that never dropped a segment.
    private const long FirstEntryAddress = 64;

    // Enough of an entry to hold a record's kind byte and seq.
    private const int MinRecordBytes = AuditCodec.EntryPrefix + 9;

    /// <summary>One intact entry: its log address, the address after it, its payload (prevHash ‖ hash ‖ canonical).</summary>
    public readonly record struct Entry(long Address, long Next, byte[] Payload);

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

    /// <summary>The tail FASTER's recovery of the commit metadata reached.</summary>
    public long CommittedTail { get; private set; }

    /// <summary>The head file, if the directory has one.</summary>
    public AuditHeadMarker? Marker { get; private set; }

    /// <summary>Null when the log reads to its committed tail and reaches the head file.</summary>
    public LogDamage? Damage { get; private set; }

    /// <summary>
    /// Scans a directory no writer is writing to (repair holds the lock) to its end; damage is returned,
    /// not thrown. Throws <see cref="IOException"/> only when <paramref name="directory"/> is not an audit
    /// directory at all.
    /// </summary>
    public static AuditLogScan Run(string directory) => Run(directory, requireLog: true, exclusive: true);

    /// <summary>
    /// <paramref name="requireLog"/> false: a new, empty directory is an empty scan (the writer's start).
    /// <paramref name="exclusive"/>: the caller holds the writer lock, so nothing writes meanwhile and
    /// segment data with no commit file is damage, not a running writer's moment.
    /// </summary>
    internal static AuditLogScan Run(string directory, bool requireLog, bool exclusive)
    {
        var scan = new AuditLogScan(directory, 0, requireLog, exclusive);
        foreach (var _ in scan.Entries())
        {
        }

        return scan;
    }

    /// <summary>
    /// Every intact entry from the start address on, in log order: those FASTER reads up to its committed
    /// end, then, when the log is damaged, the committed ones past that end up to the damage. The
    /// properties are final once this has been enumerated to its end.
    /// </summary>
    public IEnumerable<Entry> Entries()
    {
        // Read before the log: the writer updates it only after a commit, so it never names more than
        // the log held when it is recovered below.
        Marker = AuditHeadMarker.Read(directory);
        var bits = AuditWriter.ReadSegmentBits(directory) ?? 26;
        using var files = new FasterLogFiles(directory, bits);
        if (!files.HasCommitFiles)
        {
            var hasFolder = Directory.Exists(Path.Combine(directory, FasterLogFiles.CommitsFolder));
            if (!exclusive)
            {
                // A reader cannot tell a log that lost its commit metadata from a running writer's between
                // FASTER's commit files (it keeps none, or not even the folder, for a while): nothing it
                // could read is known to be committed. Verify still holds the head file as an anchor.
                if (requireLog && !hasFolder)
                {
                    throw new IOException($"{directory}: not an audit directory (no {FasterLogFiles.CommitsFolder})");
                }

                yield break;
            }

            if (files.HasData)
            {
                SetDamage(LogDamageKind.CommitMetadata, FasterLogFiles.CommitsFolder, "the segment files hold data but the commit metadata is missing or empty, so nothing says what was committed", []);
            }
            else if (requireLog && Marker is null && !hasFolder)
            {
                throw new IOException($"{directory}: not an audit directory (no {FasterLogFiles.CommitsFolder})");
            }

            // No commit file: a new log, or one that lost its files (only the head file can tell).
            CompareWithMarker();
            yield break;
        }

        var (log, device, recoveryProblem) = Recover(bits);
        string? unreadable = null;
        try
        {
            StartAddress = ReadableEnd = log is null ? Math.Max(fromAddress, FirstEntryAddress) : Math.Max(fromAddress, AuditWriter.FirstReadableAddress(log, directory, bits));
            if (log is not null && recoveryProblem is null)
            {
                CommittedTail = log.CommittedUntilAddress;
                // FASTER's own commit records are skipped by the iterator, so a clean scan may end a little
                // before the tail; the walk past the end steps over them.
                using var iterator = log.Scan(StartAddress, files.CoveredUntil(StartAddress, CommittedTail));
                while (TryNext(iterator, out var entry, ref unreadable))
                {
                    Count(entry);
                    yield return entry;
                }
            }
        }
        finally
        {
            log?.Dispose();
            device?.Dispose();
        }

        if (Compare(files, recoveryProblem, unreadable) is { } found)
        {
            foreach (var entry in found.Readable)
            {
                Count(entry);
            }

            // Past the damage, intact records that continue the chain (same seq order, prevHash linking)
            // are as good as those before it: a lost commit record or padding loses no record. The rest
            // (after a record that is gone) is for export --salvage, in seq order.
            var kept = new List<Entry>(found.Readable);
            var rest = new List<Entry>();
            var linking = true;
            foreach (var entry in found.Salvaged)
            {
                if (entry.Payload.Length < MinRecordBytes)
                {
                    continue;
                }

                var seq = SeqOf(entry);
                if (linking && seq == LastSeq + 1 && entry.Payload.AsSpan(0, AuditCodec.HashBytes).SequenceEqual(LastHash))
                {
                    Count(entry);
                    kept.Add(entry);
                    continue;
                }

                linking = false;
                if (seq > (rest.Count > 0 ? SeqOf(rest[^1]) : LastSeq))
                {
                    rest.Add(entry);
                }
            }

            SetDamage(found.Kind, found.Where, found.Problem, rest);
            foreach (var entry in kept)
            {
                yield return entry;
            }
        }

        CompareWithMarker();
    }

    /// <summary>
    /// One line for a refusal or a report: where the damage is, what is wrong, and where the readable log ends.
    /// </summary>
    public string Describe() => Damage is not { } d
        ? $"{directory}: the audit log is intact"
        : $"{directory}: the audit log is damaged: {d.Where}: {d.Problem}; "
          + (d.LastGoodSeq >= 0 ? $"the last good record is seq {d.LastGoodSeq}, the readable log ends at log address {d.Address}" : "no record before it can be read");

    /// <summary>Whether the scan read no entry from a log that starts at its beginning.</summary>
    internal bool AtLogStart => StartAddress <= FirstEntryAddress && ReadableEnd == StartAddress;

    private (FasterLog? Log, IDevice? Device, string? Problem) Recover(int bits)
    {
        FasterLog? log = null;
        IDevice? device = null;
        try
        {
            (log, device) = AuditWriter.OpenLog(directory, bits, readOnly: true);
            log.RecoverReadOnlyAsync().AsTask().GetAwaiter().GetResult();
            return (log, device, null);
        }
        catch (FasterException ex)
        {
            return (log, device, Plain(ex));
        }
    }

    /// <summary>
    /// Compares the readable end with every claim of what was committed; when the files changed under
    /// the scan (a running writer) and it found damage, looks once more: a page or a commit file can be
    /// mid-write while a later commit is already on disk, and data only in flight reads fine a moment later.
    /// </summary>
    private Finding? Compare(FasterLogFiles files, string? recoveryProblem, string? unreadable)
    {
        var before = files.Fingerprint();
        var found = Judge(files, recoveryProblem, unreadable);
        // Two commit files are a commit file being replaced (FASTER writes the new one, then removes the
        // old), whose new one may not be complete yet: also worth a second look.
        if (found is null || (files.Fingerprint() == before && !(found.Kind == LogDamageKind.CommitMetadata && files.CommitFiles > 1)))
        {
            return found;
        }

        Thread.Sleep(250);
        files.Dispose();
        return Judge(files, recoveryProblem, unreadable);
    }

    private Finding? Judge(FasterLogFiles files, string? recoveryProblem, string? unreadable)
    {
        var (claims, where, problem) = files.ReadCommitFiles();
        if (where is not null)
        {
            return new Finding(LogDamageKind.CommitMetadata, where, problem!, [], []);
        }

        var walk = files.Walk(ReadableEnd);
        claims.AddRange(walk.Claims);
        if (recoveryProblem is null)
        {
            // What FASTER itself recovered from the same files: named only when nothing read here claims as much.
            claims.Add(new FasterLogFiles.Claim(CommittedTail, "the commit metadata FASTER recovered"));
        }

        var at = files.Describe(walk.End);
        var kind = walk.Stop is FasterLogFiles.Stop.MissingSegment or FasterLogFiles.Stop.DataEnds ? LogDamageKind.MissingSegment : LogDamageKind.Unreadable;
        // A file that ends in a page past its last commit record is what a full disk leaves too (the
        // page write was partial and its commit failed): where a head file exists, it is the witness of
        // what was committed (CompareWithMarker), and the layout alone proves a cut only without one.
        if (walk.Cut is { } cut && !(walk.CutPastCommit && Marker is not null))
        {
            return new Finding(LogDamageKind.MissingSegment, at, $"{walk.Why}: {cut}", walk.Readable, walk.Salvaged);
        }

        var committed = claims.Count == 0 ? 0 : claims.Max(c => c.Until);
        if (committed > walk.End)
        {
            var source = claims.First(c => c.Until == committed).Source;
            return new Finding(kind, at, $"{walk.Why}, but {source} says the log was committed up to address {committed}: committed records cannot be read", walk.Readable, walk.Salvaged);
        }

        // Each of FASTER's own refusals is damage too, even where the files read fine by their layout.
        return recoveryProblem is not null ? new Finding(LogDamageKind.CommitMetadata, FasterLogFiles.CommitsFolder, $"the commit metadata cannot be recovered ({recoveryProblem})", [], [])
            : unreadable is not null ? new Finding(LogDamageKind.Unreadable, files.Describe(ReadableEnd), $"the record here fails its checksum or cannot be read ({unreadable}), so everything from here to the committed tail {CommittedTail} is unreadable", [], [])
            : null;
    }

    private void CompareWithMarker()
    {
        // A scan from a later address (export --follow) has not seen the records the head file counts.
        if (Damage is not null || fromAddress > 0 || Marker is not { } marker || marker.Seq <= LastSeq)
        {
            return;
        }

        SetDamage(
            LogDamageKind.ShortOfHead,
            AuditHeadMarker.FileName,
            marker.Seq == long.MaxValue ? "the head file cannot be read"
            : Records == 0 ? $"the directory held a chain up to seq {marker.Seq} (head file, chain {marker.ChainId}) but no record of it can be read: its log files are gone or unreadable"
            : $"the readable log ends at seq {LastSeq} but the head file says seq {marker.Seq} was committed: committed records are missing or unreadable",
            []);
    }

    private void Count(Entry entry)
    {
        ReadableEnd = entry.Next;
        if (entry.Payload.Length < MinRecordBytes)
        {
            return;
        }

        var seq = SeqOf(entry);
        if (FirstSeq < 0)
        {
            FirstSeq = seq;
        }

        LastSeq = seq;
        LastHash = entry.Payload.AsSpan(AuditCodec.HashBytes, AuditCodec.HashBytes).ToArray();
        Records++;
    }

    private static long SeqOf(Entry entry) => BinaryPrimitives.ReadInt64BigEndian(entry.Payload.AsSpan(AuditCodec.EntryPrefix + 1));

    private void SetDamage(LogDamageKind kind, string where, string problem, IReadOnlyList<Entry> salvaged) =>
        Damage ??= new LogDamage(kind, where, problem, LastSeq, LastHash, ReadableEnd) { Salvaged = salvaged };

    private static bool TryNext(FasterLogScanIterator iterator, out Entry entry, ref string? unreadable)
    {
        try
        {
            if (iterator.GetNext(out var raw, out var length, out var address, out var next))
            {
                entry = new Entry(address, next, raw.Length == length ? raw : raw[..length]);
                return true;
            }
        }
        catch (FasterException ex)
        {
            // An entry failed FASTER's checksum: FASTER's reading ends here, the walk past it names the damage.
            unreadable = Plain(ex);
        }

        entry = default;
        return false;
    }

    private static string Plain(Exception ex) => ex.Message.ReplaceLineEndings(" ").TrimEnd('.');

    /// <summary>Damage found past FASTER's end, with the committed entries read before it and those past it.</summary>
    private sealed record Finding(LogDamageKind Kind, string Where, string Problem, List<Entry> Readable, List<Entry> Salvaged);
}
