using System.Text.Json;

namespace ChronoGuard.Audit;

/// <summary>Reads records back, with their stored chain hashes and the exact canonical bytes hashed.</summary>
internal static class AuditReader
{
    public readonly record struct Item(AuditEntry Entry, byte[] Canonical);

    /// <summary>Every record in an audit directory, oldest first (safe while a sidecar writes to it).</summary>
    public static IEnumerable<Item> ReadDirectory(string directory, long fromAddress = 0) => ReadDirectory(directory, fromAddress, _ => { });

    public static IEnumerable<Item> ReadDirectory(string directory, long fromAddress, Action<long> nextAddress)
    {
        if (!Directory.Exists(Path.Combine(directory, "log-commits")))
        {
            throw new IOException($"{directory}: not an audit directory (no log-commits)");
        }

        var bits = AuditWriter.ReadSegmentBits(directory) ?? 26;
        var (log, device) = AuditWriter.OpenLog(directory, bits, readOnly: true);
        try
        {
            log.RecoverReadOnlyAsync().AsTask().GetAwaiter().GetResult();
            // A read-only view knows what is committed, not the writer's in-memory tail.
            using var iterator = log.Scan(Math.Max(fromAddress, AuditWriter.FirstReadableAddress(log, directory, bits)), log.CommittedUntilAddress);
            while (iterator.GetNext(out var raw, out var length, out _, out var next))
            {
                nextAddress(next);
                if (length < AuditCodec.EntryPrefix)
                {
                    continue;
                }

                var canonical = raw.AsSpan(AuditCodec.EntryPrefix, length - AuditCodec.EntryPrefix).ToArray();
                var entry = AuditCodec.Decode(canonical) ?? new AuditEntry { Seq = -1 };
                entry.PrevHash = raw.AsSpan(0, AuditCodec.HashBytes).ToArray();
                entry.Hash = raw.AsSpan(AuditCodec.HashBytes, AuditCodec.HashBytes).ToArray();
                yield return new Item(entry, canonical);
            }
        }
        finally
        {
            log.Dispose();
            device.Dispose();
        }
    }

    /// <summary>Every record of a JSONL export; the canonical bytes are rebuilt from the fields.</summary>
    public static IEnumerable<Item> ReadJsonl(string file)
    {
        var line = 0;
        foreach (var text in File.ReadLines(file))
        {
            line++;
            if (string.IsNullOrWhiteSpace(text))
            {
                continue;
            }

            AuditEntry entry;
            try
            {
                entry = AuditJson.Parse(text);
            }
            catch (Exception ex) when (ex is JsonException or FormatException or KeyNotFoundException or InvalidOperationException)
            {
                throw new InvalidDataException($"{file}: line {line}: not an audit record ({ex.Message})");
            }

            yield return new Item(entry, AuditCodec.Encode(entry));
        }
    }
}
