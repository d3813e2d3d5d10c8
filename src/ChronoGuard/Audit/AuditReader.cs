using FASTER.core;

namespace ChronoGuard.Audit;

/// <summary>
/// Reads records back, with their stored chain hashes and the exact canonical bytes hashed. What cannot
/// be read is not an end: it comes back as an item with a problem and where it is (a JSONL line, a CSV
/// line, a log address), so the verifier reports it with the seq it breaks.
/// </summary>
internal static class AuditReader
{
    // FASTER's first valid log address: the first entry of a log that never dropped a segment.
    private const long FirstEntryAddress = 64;

    /// <summary>
    /// A record (Entry set), or a record or log region that cannot be read (Problem set; Seq is the
    /// record's own seq when that much was readable, else -1). Where names the line or log address.
    /// </summary>
    public readonly record struct Item(AuditEntry? Entry, byte[] Canonical, string Where = "", long Seq = -1, string? Problem = null)
    {
        public static Item Bad(string where, string problem, long seq = -1) => new(null, [], where, seq, problem);
    }

    /// <summary>Every record in an audit directory, oldest first (safe while a sidecar writes to it).</summary>
    public static IEnumerable<Item> ReadDirectory(string directory, long fromAddress = 0) => ReadDirectory(directory, fromAddress, _ => { });

    /// <summary>
    /// Reads to the committed tail; ends with a damage item when the commit metadata says more was
    /// committed than could be read (see <see cref="AuditDamageScan"/>), preceded by the intact records
    /// between the reader's end and the damage and, with <paramref name="salvage"/>, followed by the
    /// intact records found past it.
    /// </summary>
    public static IEnumerable<Item> ReadDirectory(string directory, long fromAddress, Action<long> nextAddress, bool salvage = false)
    {
        if (!Directory.Exists(Path.Combine(directory, "log-commits")))
        {
            throw new IOException($"{directory}: not an audit directory (no log-commits)");
        }

        var bits = AuditWriter.ReadSegmentBits(directory) ?? 26;
        // FASTER's device creates an empty segment file where it is asked to read a missing one: what
        // was on disk before it opened is what the damage scan judges.
        var present = SegmentNames(directory);
        var (log, device) = AuditWriter.OpenLog(directory, bits, readOnly: true);
        try
        {
            string? recoveryProblem = null;
            try
            {
                log.RecoverReadOnlyAsync().AsTask().GetAwaiter().GetResult();
            }
            catch (FasterException ex)
            {
                recoveryProblem = ex.Message;
            }

            var start = Math.Max(fromAddress, AuditWriter.FirstReadableAddress(log, directory, bits));
            var readableEnd = start;
            if (recoveryProblem is null)
            {
                // A read-only view knows what is committed, not the writer's in-memory tail.
                using var iterator = log.Scan(start, log.CommittedUntilAddress);
                while (TryNext(iterator, out var raw, out var length, out var address, out var next))
                {
                    readableEnd = next;
                    nextAddress(next);
                    yield return FromEntry(raw, length, address);
                }
            }

            if (Damage(directory, bits, readableEnd, present) is { } damage)
            {
                foreach (var (address, payload) in damage.Readable)
                {
                    yield return FromEntry(payload, payload.Length, address);
                }

                // Damage before any record of a log that starts at its beginning is at seq 0.
                var atStart = readableEnd == start && damage.Readable.Count == 0 && start <= FirstEntryAddress;
                yield return Item.Bad(damage.Where, damage.Problem, atStart ? 0 : -1);
                if (salvage)
                {
                    foreach (var (address, payload) in damage.Salvaged)
                    {
                        yield return FromEntry(payload, payload.Length, address);
                    }
                }
            }
            else if (recoveryProblem is not null)
            {
                throw new IOException($"{directory}: the log cannot be recovered: {recoveryProblem}");
            }
        }
        finally
        {
            log.Dispose();
            device.Dispose();
        }
    }

    private static HashSet<string> SegmentNames(string directory) =>
        Directory.GetFiles(directory, "audit.log.*").Select(Path.GetFileName).ToHashSet(StringComparer.Ordinal)!;

    private static AuditDamageScan.Damage? Damage(string directory, int bits, long readableEnd, HashSet<string> present)
    {
        var before = Snapshot(directory);
        var damage = AuditDamageScan.Check(directory, bits, readableEnd, present);
        if (damage is null || Snapshot(directory) == before)
        {
            return damage;
        }

        // The files changed under the scan: a running writer. A page can be mid-write while a later
        // commit is already on disk; data that was only in flight reads fine a moment later, damage does not.
        Thread.Sleep(250);
        return AuditDamageScan.Check(directory, bits, readableEnd, present);
    }

    /// <summary>Names, sizes and write times of the log's files: whether anything wrote meanwhile.</summary>
    private static string Snapshot(string directory)
    {
        var text = new System.Text.StringBuilder();
        var commits = Path.Combine(directory, "log-commits");
        foreach (var file in Directory.GetFiles(directory, "audit.log.*").Concat(Directory.Exists(commits) ? Directory.GetFiles(commits) : []))
        {
            var info = new FileInfo(file);
            text.Append(file).Append(' ').Append(info.Exists ? info.Length : -1).Append(' ').Append(info.Exists ? info.LastWriteTimeUtc.Ticks : 0).Append('\n');
        }

        return text.ToString();
    }

    private static bool TryNext(FasterLogScanIterator iterator, out byte[] raw, out int length, out long address, out long next)
    {
        try
        {
            return iterator.GetNext(out raw, out length, out address, out next);
        }
        catch (FasterException)
        {
            // An entry failed FASTER's checksum: the scan ends here and the damage scan names it.
            raw = [];
            length = 0;
            address = next = 0;
            return false;
        }
    }

    private static Item FromEntry(byte[] raw, int length, long address)
    {
        var where = $"log address {address}";
        if (length < AuditCodec.EntryPrefix + 18)
        {
            return Item.Bad(where, $"an entry of {length} bytes is too short to be a record");
        }

        var canonical = raw.AsSpan(AuditCodec.EntryPrefix, length - AuditCodec.EntryPrefix).ToArray();
        var entry = AuditCodec.Decode(canonical, out var problem);
        if (entry is null)
        {
            return Item.Bad(where, problem!, System.Buffers.Binary.BinaryPrimitives.ReadInt64BigEndian(canonical.AsSpan(1)));
        }

        entry.PrevHash = raw.AsSpan(0, AuditCodec.HashBytes).ToArray();
        entry.Hash = raw.AsSpan(AuditCodec.HashBytes, AuditCodec.HashBytes).ToArray();
        return new Item(entry, canonical, where, entry.Seq);
    }

    /// <summary>Every record of a JSONL export; the canonical bytes are rebuilt from the fields.</summary>
    public static IEnumerable<Item> ReadJsonl(string file)
    {
        var line = 0;
        foreach (var text in File.ReadLines(file))
        {
            line++;
            if (text.Length == 0)
            {
                continue;
            }

            var entry = AuditJson.Parse(text, out var problem, out var seq);
            yield return entry is null ? Item.Bad($"line {line}", problem!, seq) : new Item(entry, AuditCodec.Encode(entry), $"line {line}", entry.Seq);
        }
    }

    /// <summary>Every record of a CSV export (format 1 or format 2 header).</summary>
    public static IEnumerable<Item> ReadCsv(string file)
    {
        var line = 0;
        IReadOnlyList<string>? header = null;
        foreach (var text in File.ReadLines(file))
        {
            line++;
            if (header is null)
            {
                var names = AuditJson.SplitCsv(text);
                if (names is null || !(names.SequenceEqual(AuditJson.Columns) || names.SequenceEqual(AuditJson.ColumnsV1)))
                {
                    throw new InvalidDataException($"{file}: line 1: not the header of an audit CSV export");
                }

                header = names;
                continue;
            }

            if (text.Length == 0)
            {
                continue;
            }

            var cells = AuditJson.SplitCsv(text);
            if (cells is null)
            {
                yield return Item.Bad($"line {line}", "a quoted cell is not closed or is followed by text (cut line)");
                continue;
            }

            var entry = AuditJson.ParseCsv(header, cells, out var problem, out var seq);
            yield return entry is null ? Item.Bad($"line {line}", problem!, seq) : new Item(entry, AuditCodec.Encode(entry), $"line {line}", entry.Seq);
        }
    }
}
