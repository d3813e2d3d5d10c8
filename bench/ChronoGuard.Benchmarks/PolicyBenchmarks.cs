using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using BenchmarkDotNet.Attributes;
using ChronoGuard.Policy;

namespace ChronoGuard.Benchmarks;

/// <summary>A policy of 10,000 domains and 100 rules (and one of 8,000 domains and 2,000 port-scoped patterns, 1,000 of them on names listed without a port too): decide, authenticate, compile.</summary>
[MemoryDiagnoser]
public class PolicyBenchmarks
{
    private static readonly DateTimeOffset Now = new(2026, 11, 25, 10, 0, 0, TimeSpan.Zero);
    private string _path = null!;
    private CompiledPolicy _policy = null!;
    private AgentPlan _agent = null!;
    private CompiledPolicy _ports = null!;
    private AgentPlan _portsAgent = null!;
    private byte[] _credentials = null!;
    private CompiledPolicy _inspected = null!;
    private AgentPlan _inspectedAgent = null!;
    private byte[] _carrying = null!;
    private byte[] _plain = null!;

    [GlobalSetup]
    public void Setup()
    {
        _path = Path.Combine(Path.GetTempPath(), "cg-bench-policy.json");
        File.WriteAllText(_path, LargePolicy(10_000, 100));
        _policy = PolicyLoader.Load(_path, new AgentRegistry(), 512, out _);
        _agent = _policy.AgentsById["bot"];
        _credentials = Encoding.ASCII.GetBytes("Basic " + Convert.ToBase64String("bot:token"u8));
        _policy.Authenticate(_credentials, out _);
        var ports = _path + ".ports";
        File.WriteAllText(ports, LargePolicy(8_000, 100, portScoped: 1000));
        _ports = PolicyLoader.Load(ports, new AgentRegistry(), 512, out _);
        _portsAgent = _ports.AgentsById["bot"];
        File.Delete(ports);

        // The 10,000-domain policy, inspecting one wildcard and with one credential on it (SPEC §7).
        var inspected = _path + ".inspected";
        Environment.SetEnvironmentVariable("CG_BENCH_SECRET", "bench-secret-value");
        File.WriteAllText(inspected, LargePolicy(10_000, 100)
            .Replace("\"name\": \"big\", \"allowedDomains\"", "\"name\": \"big\", \"inspect\": [\"*.svc4711.example.com\"], \"allowedDomains\"", StringComparison.Ordinal)
            .Replace("] } ] }", "] } ], \"credentials\": [ { \"name\": \"api\", \"agents\": [\"bot\"], \"domains\": [\"*.svc4711.example.com\"], \"header\": \"Authorization\", \"value\": \"Bearer {secret}\", \"secretEnv\": \"CG_BENCH_SECRET\", \"placeholder\": \"cg-placeholder-api\", \"require\": true } ] }", StringComparison.Ordinal));
        _inspected = PolicyLoader.Load(inspected, new AgentRegistry(), 512, out _, inspectionConfigured: true);
        _inspectedAgent = _inspected.AgentsById["bot"];
        File.Delete(inspected);
        const string Head = "GET /v1/repos/owner/name/issues?state=open&per_page=100 HTTP/1.1\r\nHost: api.svc4711.example.com\r\nUser-Agent: agent/1.0 (linux; x64)\r\nAccept: application/json\r\nAccept-Encoding: gzip, br\r\nX-Request-Id: 5f0c2a4e-9b1d-4c1e-8f2a-1b2c3d4e5f60\r\n";
        _carrying = Encoding.ASCII.GetBytes(Head + "Authorization: Bearer cg-placeholder-api\r\n\r\n");
        _plain = Encoding.ASCII.GetBytes(Head + "Authorization: Bearer something-else-entirely\r\n\r\n");
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

    /// <summary>A port allowedPorts does not list, admitted by a port-scoped pattern beside the name's port-less one.</summary>
    [Benchmark]
    public int DecidePortScoped() =>
        _ports.Decide(_portsAgent, new RequestFacts("api.svc1001.example.com"u8, 8050, "CONNECT"u8, default, default, null, true), Now, Stopwatch.GetTimestamp()).Status;

    /// <summary>The same name one port past the range: refused at the port step.</summary>
    [Benchmark]
    public int DecidePortRefused() =>
        _ports.Decide(_portsAgent, new RequestFacts("api.svc1001.example.com"u8, 8101, "CONNECT"u8, default, default, null, true), Now, Stopwatch.GetTimestamp()).Status;

    /// <summary>An allowedPorts port on the policy with port-scoped patterns: what they cost a request that does not use them.</summary>
    [Benchmark]
    public int DecideAllowedBesidePorts() =>
        _ports.Decide(_portsAgent, new RequestFacts("api.svc1001.example.com"u8, 443, "CONNECT"u8, default, default, null, true), Now, Stopwatch.GetTimestamp()).Status;

    /// <summary>A CONNECT to an inspected host: the inspect mask is read, rules on the inner request are left to it.</summary>
    [Benchmark]
    public int DecideInspectedTunnel() =>
        _inspected.Decide(_inspectedAgent, new RequestFacts("api.svc4711.example.com"u8, 443, "CONNECT"u8, default, default, null, true), Now, Stopwatch.GetTimestamp()).Inspect ? 1 : 0;

    /// <summary>SPEC §7's steps after ALLOW on an inner request carrying its placeholder: the head searched, the credential bound, injected.</summary>
    [Benchmark]
    public int CredentialInjected() =>
        _inspected.ApplyCredentials(_inspectedAgent, "api.svc4711.example.com"u8, 443, _carrying, inspected: true, tunnel: false, Now, Stopwatch.GetTimestamp(), DecisionResult.Allow(Reasons.Allowed)).Status;

    /// <summary>The same on a plain-HTTP head to another host without a placeholder: what every request pays once a policy has credentials.</summary>
    [Benchmark]
    public int CredentialScanNoPlaceholder() =>
        _inspected.ApplyCredentials(_inspectedAgent, "host3.example.org"u8, 80, _plain, inspected: false, tunnel: false, Now, Stopwatch.GetTimestamp(), DecisionResult.Allow(Reasons.Allowed)).Status;

    [Benchmark]
    public int AuthenticateCached() => (int)_policy.Authenticate(_credentials, out _);

    [Benchmark]
    public int Compile() => PolicyLoader.Load(_path, new AgentRegistry(), 512, out _).Patterns.Length;

    /// <param name="portScoped">Pairs of port-scoped patterns added: a range on an existing wildcard's name and a new name on port 22.</param>
    internal static string LargePolicy(int domains, int rules, int portScoped = 0)
    {
        var sb = new StringBuilder();
        var hash = Convert.ToHexStringLower(SHA256.HashData("token"u8));
        sb.Append("{ \"version\": 1, \"agents\": [ { \"id\": \"bot\", \"tokenSha256\": \"").Append(hash).Append("\", \"policies\": [\"big\"] } ],");
        sb.Append("\"policies\": [ { \"name\": \"big\", \"allowedDomains\": [");
        for (var i = 0; i < domains; i++)
        {
            sb.Append(i == 0 ? string.Empty : ",").Append(i % 2 == 0 ? $"\"*.svc{i + 1}.example.com\"" : $"\"host{i}.example.org\"");
        }

        for (var i = 0; i < portScoped; i++)
        {
            sb.Append($",\"*.svc{(2 * i) + 1}.example.com:8000-8100\",\"ssh{i}.example.org:22\"");
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
