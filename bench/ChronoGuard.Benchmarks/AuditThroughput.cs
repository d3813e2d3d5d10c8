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
        var latencies = CommitBeforeForwardLatency(32, TimeSpan.FromSeconds(3));
        Array.Sort(latencies);
        double P(double q) => latencies[Math.Min(latencies.Length - 1, (int)(q * latencies.Length))] * 1e6 / Stopwatch.Frequency;
        output.WriteLine($"| append → durable | {P(0.5):F0} | {P(0.99):F0} | {P(0.999):F0} | {latencies.Length:N0} |");
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

    private static long[] CommitBeforeForwardLatency(int inFlight, TimeSpan duration)
    {
        var dir = Path.Combine(Path.GetTempPath(), "cg-audit-lat-" + Guid.NewGuid().ToString("N"));
        try
        {
            using var writer = AuditWriter.Open(new AuditOptions { Directory = dir, Durability = "commit-before-forward" }, TimeProvider.System);
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
