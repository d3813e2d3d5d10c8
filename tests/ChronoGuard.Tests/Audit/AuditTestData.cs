using ChronoGuard.Audit;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Audit;

internal static class AuditTestData
{
    /// <summary>Writes <paramref name="count"/> varied records through a real writer and returns the export lines.</summary>
    public static List<string> WriteAndExport(TempDir dir, int count, string? keyFile = null, string durability = "batched")
    {
        var options = new AuditOptions { Directory = dir.File("audit"), HmacKeyFile = keyFile, Durability = durability, QueueCapacity = 64 };
        using (var writer = AuditWriter.Open(options, TimeProvider.System))
        {
            for (var i = 0; i < count; i++)
            {
                var r = default(AuditRecord);
                r.Kind = (AuditKind)(i % 3);
                r.Port = 443;
                r.Status = i % 2 == 0 ? 200 : 403;
                r.ConnectionId = i;
                r.BytesUp = i * 10;
                r.BytesDown = i * 20;
                r.DurationMs = i;
                r.Set(AuditText.Agent, "bot-" + (i % 4));
                r.Set(AuditText.SourceIp, "127.0.0.1");
                r.Set(AuditText.Method, "CONNECT");
                r.Set(AuditText.Host, $"h{i}.example.org");
                r.Set(AuditText.Path, i % 5 == 0 ? "/ünïcode?q=1" : string.Empty);
                r.Set(AuditText.Decision, i % 2 == 0 ? "ALLOW" : "BLOCK");
                r.Set(AuditText.Reason, i % 2 == 0 ? "allowed" : "domain_blocked");
                r.Set(AuditText.Policy, "research");
                writer.Append(ref r);
            }
        }

        return Export(options.Directory);
    }

    /// <summary>
    /// Appends <paramref name="count"/> decision records of ~<paramref name="pathLength"/> + 150 bytes
    /// (16,000 of 100 fill several 512 KiB pages of 1 MiB segments) and returns the last seq. With
    /// <paramref name="commitEvery"/>, it waits for a durable commit after every that many records, so the
    /// log holds FASTER commit records at known places whatever the machine's speed (a fixture that
    /// hoped for the writer's own commit timer to fire mid-batch failed on a quiet machine).
    /// </summary>
    public static long AppendDecisions(AuditWriter writer, int count, int pathLength = 100, string prefix = "h", int commitEvery = 0)
    {
        var seq = -1L;
        for (var i = 0; i < count; i++)
        {
            var r = default(AuditRecord);
            r.Kind = AuditKind.Decision;
            r.Set(AuditText.Host, $"{prefix}{i}.example.org");
            r.Set(AuditText.Path, new string('p', pathLength));
            seq = writer.Append(ref r);
            if (commitEvery > 0 && (i + 1) % commitEvery == 0)
            {
                Commit(writer, seq);
            }
        }

        return seq;
    }

    /// <summary>Forces a durable commit of everything up to <paramref name="seq"/> (the writer commits it at once for a waiter).</summary>
    public static void Commit(AuditWriter writer, long seq)
    {
        if (!writer.WaitDurableAsync(seq).AsTask().Wait(TimeSpan.FromSeconds(60)) || writer.CommittedSeq < seq)
        {
            throw new InvalidOperationException($"seq {seq} was not committed: {writer.FaultCause}");
        }
    }

    public static List<string> Export(string auditDir)
    {
        var lines = new List<string>();
        foreach (var item in AuditReader.ReadDirectory(auditDir))
        {
            var entry = item.Entry ?? throw new InvalidDataException($"{item.Where}: {item.Problem}");
            var buffer = new MemoryStream();
            using (var w = new System.Text.Json.Utf8JsonWriter(buffer))
            {
                AuditJson.Write(w, entry);
            }

            lines.Add(System.Text.Encoding.UTF8.GetString(buffer.ToArray()));
        }

        return lines;
    }
}
