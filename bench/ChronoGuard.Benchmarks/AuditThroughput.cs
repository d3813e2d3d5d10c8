using System.Diagnostics;
using ChronoGuard.Audit;

namespace ChronoGuard.Benchmarks;

/// <summary>
/// Whole-writer figures that BenchmarkDotNet's per-invocation model does not fit: records per second
/// chained and committed into FasterLog at each group-commit size, and the latency commit-before-forward
/// adds to a request (append → durable) with 32 requests in flight.
/// Run: <c>dotnet run -c Release --project bench/ChronoGuard.Benchmarks -- audit-throughput</c>.
/// </summary>
internal static class AuditThroughput
{
    public static void Run(TextWriter output)
    {
        // The batch is how many records the writer chains between looks at the commit in flight; a
        // commit covers everything enqueued by the time the previous one finished.
        output.WriteLine("| batch (MaxBatch) | records/s chained + committed | commits/s | mean records per commit |");
        output.WriteLine("| ---: | ---: | ---: | ---: |");
        foreach (var batch in new[] { 1, 4, 16, 64, 256, 1024 })
        {
            var (records, commits) = Throughput(batch, TimeSpan.FromSeconds(2));
            output.WriteLine($"| {batch} | {records:N0} | {commits:N0} | {records / Math.Max(1, commits):N0} |");
        }

        output.WriteLine();
        output.WriteLine("| commit-before-forward, 32 in flight | p50 µs | p99 µs | p99.9 µs | requests |");
        output.WriteLine("| --- | ---: | ---: | ---: | ---: |");
        // Signing runs on the writer thread after a commit: one ECDSA P-256 signature and an fsync'd
        // append per interval. Twelve seconds so the default 10 s interval signs inside the window.
        foreach (var (label, signing, seconds) in new (string, int?, int)[] { ("append → durable", null, 12), ("with signing, default 10 s interval", 10_000, 12), ("with signing every 100 ms", 100, 6) })
        {
            var latencies = CommitBeforeForwardLatency(32, TimeSpan.FromSeconds(seconds), signing);
            Array.Sort(latencies);
            double P(double q) => latencies[Math.Min(latencies.Length - 1, (int)(q * latencies.Length))] * 1e6 / Stopwatch.Frequency;
            output.WriteLine($"| {label} | {P(0.5):F0} | {P(0.99):F0} | {P(0.999):F0} | {latencies.Length:N0} |");
        }

        output.WriteLine();
        output.WriteLine("| checkpoint signing (ECDSA P-256) | per second |");
        output.WriteLine("| --- | ---: |");
        var (signs, appends) = SigningRate(TimeSpan.FromSeconds(2));
        output.WriteLine($"| sign only | {signs:N0} |");
        output.WriteLine($"| sign + append to checkpoints.jsonl + fsync | {appends:N0} |");
    }

    private static string SigningKey(string dir)
    {
        Directory.CreateDirectory(dir);
        var file = Path.Combine(dir, "signing.key");
        using var key = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
        File.WriteAllText(file, key.ExportPkcs8PrivateKeyPem());
        return file;
    }

    private static (double Signs, double Appends) SigningRate(TimeSpan duration)
    {
        var dir = Path.Combine(Path.GetTempPath(), "cg-audit-sign-" + Guid.NewGuid().ToString("N"));
        try
        {
            var options = new AuditOptions { Directory = dir, SigningKeyFile = SigningKey(dir), CheckpointIntervalMs = 1 };
            using var signer = CheckpointSigner.Open(options, TimeProvider.System)!;
            var hash = new byte[32];
            double Rate(Action<long> once)
            {
                var n = 0L;
                var started = Stopwatch.GetTimestamp();
                while (Stopwatch.GetElapsedTime(started) < duration)
                {
                    once(n++);
                }

                return n / Stopwatch.GetElapsedTime(started).TotalSeconds;
            }

            var signs = Rate(n => signer.Sign(n, hash));
            // final: true signs at once, as at stop; each call appends one fsync'd line.
            var appends = Rate(n => signer.OnCommitted(n, hash, final: true));
            return (signs, appends);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static AuditRecord Sample()
    {
        var r = default(AuditRecord);
        r.Set(AuditText.Agent, "research-bot");
        r.Set(AuditText.SourceIp, "127.0.0.1");
        r.Set(AuditText.Method, "CONNECT");
        r.Set(AuditText.Host, "api.openai.com");
        r.Set(AuditText.Decision, "ALLOW");
        r.Set(AuditText.Reason, "allowed");
        r.Port = 443;
        r.Status = 200;
        return r;
    }

    private static (double Records, double Commits) Throughput(int batch, TimeSpan duration)
    {
        var dir = Path.Combine(Path.GetTempPath(), "cg-audit-tp-" + Guid.NewGuid().ToString("N"));
        try
        {
            // commit-before-forward commits after every drained batch, so MaxBatch is the commit size.
            var options = new AuditOptions { Directory = dir, Durability = "commit-before-forward", MaxBatch = batch, QueueCapacity = 1 << 16 };
            using var writer = AuditWriter.Open(options, TimeProvider.System);
            var commits = 0L;
            writer.OnCommit = _ => commits++;
            using var stop = new CancellationTokenSource();
            var producer = new Thread(() =>
            {
                var r = Sample();
                while (!stop.IsCancellationRequested)
                {
                    r.TimestampNs = 0;
                    writer.Append(ref r);
                }
            });
            producer.Start();
            Thread.Sleep(300); // warm-up: JIT and the first segment's allocation
            var seq0 = writer.CommittedSeq;
            var commits0 = Volatile.Read(ref commits);
            var started = Stopwatch.GetTimestamp();
            Thread.Sleep(duration);
            var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
            var seq1 = writer.CommittedSeq;
            var commits1 = Volatile.Read(ref commits);
            stop.Cancel();
            producer.Join();
            return ((seq1 - seq0) / seconds, (commits1 - commits0) / seconds);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static long[] CommitBeforeForwardLatency(int inFlight, TimeSpan duration, int? checkpointIntervalMs)
    {
        var dir = Path.Combine(Path.GetTempPath(), "cg-audit-lat-" + Guid.NewGuid().ToString("N"));
        try
        {
            var options = new AuditOptions { Directory = dir, Durability = "commit-before-forward" };
            if (checkpointIntervalMs is { } interval)
            {
                options.SigningKeyFile = SigningKey(Path.Combine(dir, "key"));
                options.CheckpointIntervalMs = interval;
            }

            using var writer = AuditWriter.Open(options, TimeProvider.System);
            var samples = new List<long>[inFlight];
            var until = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
            var tasks = new Task[inFlight];
            for (var t = 0; t < inFlight; t++)
            {
                var mine = samples[t] = new List<long>(1 << 16);
                tasks[t] = Task.Run(async () =>
                {
                    var r = Sample();
                    while (Stopwatch.GetTimestamp() < until)
                    {
                        var start = Stopwatch.GetTimestamp();
                        r.TimestampNs = 0;
                        var seq = writer.Append(ref r);
                        await writer.WaitDurableAsync(seq).ConfigureAwait(false);
                        mine.Add(Stopwatch.GetTimestamp() - start);
                    }
                });
            }

            Task.WaitAll(tasks);
            // Drop the first 10% of each stream: JIT and file creation, not steady state.
            return samples.SelectMany(s => s.Skip(s.Count / 10)).ToArray();
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
