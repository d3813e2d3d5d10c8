using BenchmarkDotNet.Attributes;
using ChronoGuard.Audit;

namespace ChronoGuard.Benchmarks;

/// <summary>
/// The request path's share of auditing: one <see cref="AuditWriter.Append"/> into the ring while the
/// real writer thread chains and commits to a FasterLog on disk behind it.
/// </summary>
[MemoryDiagnoser]
public class AuditAppendBenchmarks
{
    private const int PerInvoke = 100_000;
    private string _dir = null!;
    private AuditWriter _writer = null!;
    private readonly AuditRing _ring = new(4096, 0);
    private AuditRecord _record;

    [GlobalSetup]
    public void Setup()
    {
        _dir = Path.Combine(Path.GetTempPath(), "cg-bench-audit-" + Guid.NewGuid().ToString("N"));
        _writer = AuditWriter.Open(new AuditOptions { Directory = _dir, QueueCapacity = 1 << 14 }, TimeProvider.System);
        _record.Kind = AuditKind.Decision;
        _record.Set(AuditText.Agent, "research-bot");
        _record.Set(AuditText.SourceIp, "127.0.0.1");
        _record.Set(AuditText.Method, "CONNECT");
        _record.Set(AuditText.Host, "api.openai.com");
        _record.Set(AuditText.Decision, "ALLOW");
        _record.Set(AuditText.Reason, "allowed");
        _record.Set(AuditText.Policy, "research");
        _record.Port = 443;
        _record.Status = 200;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _writer.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    /// <summary>
    /// What a request handler pays when the ring has room: timestamp, one CAS, the record copy and the
    /// publish. The same thread frees the slots every 1,024 appends (a few ns per record), standing in
    /// for a writer that keeps up; <see cref="Append"/> shows the cost when it does not.
    /// </summary>
    [Benchmark(OperationsPerInvoke = PerInvoke)]
    public long RingAppend()
    {
        var seq = 0L;
        for (var i = 0; i < PerInvoke; i++)
        {
            _record.TimestampNs = (TimeProvider.System.GetUtcNow().UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100;
            _ring.TryAppend(ref _record, out seq);
            DrainEvery1024(i);
        }

        return seq;
    }

    /// <summary>
    /// The request path as it is now: claim a slot, fill the record in place (reset, timestamp, the
    /// seven text fields a decision has), publish. Same draining as <see cref="RingAppend"/>.
    /// </summary>
    [Benchmark(OperationsPerInvoke = PerInvoke)]
    public long ClaimFillPublish()
    {
        var seq = 0L;
        for (var i = 0; i < PerInvoke; i++)
        {
            _ring.TryClaim(out seq);
            ref var r = ref _ring.At(seq);
            r.Reset();
            r.Seq = seq;
            r.TimestampNs = (TimeProvider.System.GetUtcNow().UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100;
            Fill(ref r);
            _ring.Publish(seq);
            DrainEvery1024(i);
        }

        return seq;
    }

    /// <summary>The append itself, as <see cref="RingAppend"/> measures it for the copying path: claim, clear, stamp, publish.</summary>
    [Benchmark(OperationsPerInvoke = PerInvoke)]
    public long ClaimPublish()
    {
        var seq = 0L;
        for (var i = 0; i < PerInvoke; i++)
        {
            _ring.TryClaim(out seq);
            ref var r = ref _ring.At(seq);
            r.Reset();
            r.Seq = seq;
            r.TimestampNs = (TimeProvider.System.GetUtcNow().UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100;
            _ring.Publish(seq);
            DrainEvery1024(i);
        }

        return seq;
    }

    /// <summary>The earlier request path for comparison: build a record on the stack, then copy it in.</summary>
    [Benchmark(OperationsPerInvoke = PerInvoke)]
    public long BuildThenAppend()
    {
        var seq = 0L;
        for (var i = 0; i < PerInvoke; i++)
        {
            var r = default(AuditRecord);
            r.TimestampNs = (TimeProvider.System.GetUtcNow().UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100;
            Fill(ref r);
            _ring.TryAppend(ref r, out seq);
            DrainEvery1024(i);
        }

        return seq;
    }

    /// <summary>Stands in for a writer that keeps up: frees the slots every 1,024 appends.</summary>
    private void DrainEvery1024(int i)
    {
        if ((i & 1023) == 1023)
        {
            while (_ring.TryPeek(out _))
            {
                _ring.Advance();
            }
        }
    }

    private static void Fill(ref AuditRecord r)
    {
        r.Kind = AuditKind.Decision;
        r.Set(AuditText.Agent, "research-bot"u8);
        r.Set(AuditText.SourceIp, "127.0.0.1"u8);
        r.Set(AuditText.Method, "CONNECT"u8);
        r.Set(AuditText.Host, "api.openai.com"u8);
        r.Set(AuditText.Decision, "ALLOW"u8);
        r.Set(AuditText.Reason, "allowed"u8);
        r.Set(AuditText.Policy, "research"u8);
        r.Port = 443;
        r.Status = 200;
    }

    /// <summary>Appends faster than the writer commits: the figure is bounded by writer throughput (back-pressure).</summary>
    [Benchmark(OperationsPerInvoke = PerInvoke)]
    public long Append()
    {
        var seq = 0L;
        for (var i = 0; i < PerInvoke; i++)
        {
            _record.TimestampNs = 0;
            seq = _writer.Append(ref _record);
        }

        return seq;
    }
}
