using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using BenchmarkDotNet.Attributes;
using ChronoGuard.Policy;

namespace ChronoGuard.Benchmarks;

/// <summary>A policy of 10,000 domains and 100 rules: decide, authenticate, compile.</summary>
[MemoryDiagnoser]
public class PolicyBenchmarks
{
    private static readonly DateTimeOffset Now = new(2026, 11, 25, 10, 0, 0, TimeSpan.Zero);
    private string _path = null!;
    private CompiledPolicy _policy = null!;
    private AgentPlan _agent = null!;
    private byte[] _credentials = null!;

    [GlobalSetup]
    public void Setup()
    {
        _path = Path.Combine(Path.GetTempPath(), "cg-bench-policy.json");
        File.WriteAllText(_path, LargePolicy(10_000, 100));
        _policy = PolicyLoader.Load(_path, new AgentRegistry(), 512, out _);
        _agent = _policy.AgentsById["bot"];
        _credentials = Encoding.ASCII.GetBytes("Basic " + Convert.ToBase64String("bot:token"u8));
        _policy.Authenticate(_credentials, out _);
    }

    [GlobalCleanup]
    public void Cleanup() => File.Delete(_path);

    /// <summary>An allowed domain deep in the list: every rule is evaluated (none matches), then the lists.</summary>
    [Benchmark]
    public int DecideAllowed() =>
        _policy.Decide(_agent, new RequestFacts("api.svc4711.example.com"u8, 443, "CONNECT"u8, default, default, null, true), Now, Stopwatch.GetTimestamp()).Status;

    [Benchmark]
    public int DecideUnlisted() =>
        _policy.Decide(_agent, new RequestFacts("unlisted.example.net"u8, 443, "CONNECT"u8, default, default, null, true), Now, Stopwatch.GetTimestamp()).Status;

    [Benchmark]
    public int AuthenticateCached() => (int)_policy.Authenticate(_credentials, out _);

    [Benchmark]
    public int Compile() => PolicyLoader.Load(_path, new AgentRegistry(), 512, out _).Patterns.Length;

    internal static string LargePolicy(int domains, int rules)
    {
        var sb = new StringBuilder();
        var hash = Convert.ToHexStringLower(SHA256.HashData("token"u8));
        sb.Append("{ \"version\": 1, \"agents\": [ { \"id\": \"bot\", \"tokenSha256\": \"").Append(hash).Append("\", \"policies\": [\"big\"] } ],");
        sb.Append("\"policies\": [ { \"name\": \"big\", \"allowedDomains\": [");
        for (var i = 0; i < domains; i++)
        {
            sb.Append(i == 0 ? string.Empty : ",").Append(i % 2 == 0 ? $"\"*.svc{i + 1}.example.com\"" : $"\"host{i}.example.org\"");
        }

        sb.Append("], \"rules\": [");
        for (var i = 0; i < rules; i++)
        {
            sb.Append(i == 0 ? string.Empty : ",").Append($$"""{ "name": "r{{i}}", "priority": {{i}}, "action": "deny", "when": [ { "field": "domain", "op": "ends_with", "value": ".blocked{{i}}.test" }, { "field": "port", "op": "equals", "value": 8443 } ] }""");
        }

        sb.Append("] } ] }");
        return sb.ToString();
    }
}
