namespace ChronoGuard.Audit;

/// <summary>
/// Reads records back, with their stored chain hashes and the exact canonical bytes hashed. What cannot
/// be read is not an end: it comes back as an item with a problem and where it is (a JSONL line, a CSV
/// line, a log address), so the verifier reports it with the seq it breaks.
/// </summary>
internal static class AuditReader
{
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
    /// The records <see cref="AuditLogScan"/> reads, then one damage item when it found damage and,
    /// with <paramref name="salvage"/>, the intact records it found past the damage.
    /// <paramref name="nextAddress"/> learns the address after each record (where a later read resumes).
    /// </summary>
    public static IEnumerable<Item> ReadDirectory(string directory, long fromAddress, Action<long> nextAddress, bool salvage = false)
    {
        var scan = new AuditLogScan(directory, fromAddress);
        foreach (var entry in scan.Entries())
        {
            nextAddress(entry.Next);
            yield return FromEntry(entry.Payload, entry.Payload.Length, entry.Address);
        }

        // A readable log short of the head file is left to the caller, which holds the head file as an
        // anchor and names the seq where the chain falls short of it (verify: "truncation").
        if (scan.Damage is not { } damage || (damage.Kind == LogDamageKind.ShortOfHead && scan.Records > 0))
        {
            yield break;
        }

        // Damage before any record of a log that starts at its beginning is at seq 0.
        yield return Item.Bad(damage.Where, damage.Problem, scan.AtLogStart ? 0 : -1);
        if (salvage)
        {
            foreach (var entry in damage.Salvaged)
            {
                yield return FromEntry(entry.Payload, entry.Payload.Length, entry.Address);
            }
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

    /// <summary>
    /// The rows of a CSV file with the line each begins on. A line break inside a quoted cell is part of
    /// the cell (RFC 4180): a CR or LF an agent put in a field must read back as it was hashed.
    /// </summary>
    private static IEnumerable<(int Line, string Text)> CsvRows(string file)
    {
        using var reader = new StreamReader(file, System.Text.Encoding.UTF8);
        var row = new System.Text.StringBuilder();
        var quoted = false;
        var line = 1;
        var start = 1;
        int c;
        while ((c = reader.Read()) >= 0)
        {
            if (c == '\n')
            {
                line++;
                if (!quoted)
                {
                    var length = row.Length > 0 && row[^1] == '\r' ? row.Length - 1 : row.Length;
                    yield return (start, row.ToString(0, length));
                    row.Clear();
                    start = line;
                    continue;
                }
            }
            else if (c == '"')
            {
                quoted = !quoted;
            }

            row.Append((char)c);
        }

        if (row.Length > 0)
        {
            yield return (start, row.ToString());
        }
    }

    /// <summary>Every record of a CSV export (format 1, 2 or 3 header).</summary>
    public static IEnumerable<Item> ReadCsv(string file)
    {
        IReadOnlyList<string>? header = null;
        foreach (var (line, text) in CsvRows(file))
        {
            if (header is null)
            {
                var names = AuditJson.SplitCsv(text);
                if (names is null || !(names.SequenceEqual(AuditJson.Columns) || names.SequenceEqual(AuditJson.ColumnsV2) || names.SequenceEqual(AuditJson.ColumnsV1)))
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
