using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using BenchmarkDotNet.Attributes;
using ChronoGuard.Policy;
using ChronoGuard.Proxy;
using ChronoGuard.Metrics;
using ChronoGuard.Stats;

namespace ChronoGuard.Benchmarks;

/// <summary>One /metrics scrape with 1,000 agents, each with decisions and domains recorded.</summary>
[MemoryDiagnoser]
public class MetricsBenchmarks
{
    private string _path = null!;
    private StatsEndpoints _endpoints = null!;
    private readonly ArrayBufferWriter<byte> _body = new(1 << 20);

    [GlobalSetup]
    public void Setup()
    {
        var hash = Convert.ToHexStringLower(SHA256.HashData("token"u8));
        var sb = new StringBuilder("{ \"version\": 1, \"agents\": [");
        for (var i = 0; i < 1000; i++)
        {
            sb.Append(i == 0 ? string.Empty : ",").Append($$"""{ "id": "agent-{{i}}", "tokenSha256": "{{hash}}", "policies": ["p"] }""");
        }

        sb.Append("], \"policies\": [ { \"name\": \"p\", \"allowedDomains\": [\"*.example.com\"] } ] }");
        _path = Path.Combine(Path.GetTempPath(), "cg-bench-metrics.json");
        File.WriteAllText(_path, sb.ToString());
        var engine = new PolicyEngine(_path, 512, TimeProvider.System);
        engine.Reload();
        var metrics = new ProxyMetrics(DecisionReasons.Labels);
        var minute = DateTimeOffset.UtcNow.UtcTicks / TimeSpan.TicksPerMinute;
        foreach (var agent in engine.Current.Agents)
        {
            for (var d = 0; d < 30; d++)
            {
                metrics.ForAgent(agent.Runtime.Index).Count((Decision)(d % 6), d % 2 == 0 ? Reasons.Allowed : Reasons.DomainBlocked);
                metrics.RecordDomain(Encoding.ASCII.GetBytes($"h{d}.{agent.Id}.example.com"), agent.Runtime.Index, minute);
            }
        }

        _endpoints = new StatsEndpoints(metrics, engine, null, null, "bench");
    }

    [GlobalCleanup]
    public void Cleanup() => File.Delete(_path);

    private readonly AgentMetrics _agent = new(DecisionReasons.Labels);

    /// <summary>The per-request counter: reason lookup plus one Interlocked increment (0 B).</summary>
    [Benchmark]
    public void CountDecision() => _agent.Count(Decision.Block, Reasons.DomainBlocked);

    [Benchmark]
    public int RenderMetrics()
    {
        _body.ResetWrittenCount();
        _endpoints.RenderMetrics(_body);
        return _body.WrittenCount;
    }
}
