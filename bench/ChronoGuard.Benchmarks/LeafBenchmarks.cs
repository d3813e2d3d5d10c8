using System.Net.Security;
using BenchmarkDotNet.Attributes;
using ChronoGuard.Inspection;

namespace ChronoGuard.Benchmarks;

/// <summary>
/// Leaves for inspected tunnels (SPEC §7, issue 17: first mint ≤ 2 ms, a cached leaf adds nothing
/// measurable to the handshake): a host never seen (key generation, signing, the certificate context,
/// and the CLOCK eviction a full cache makes), and a host already cached.
/// </summary>
[MemoryDiagnoser]
public class LeafBenchmarks
{
    private const int Hosts = 1 << 16;
    private readonly string[] _fresh = new string[Hosts];
    private CertificateAuthority _ca = null!;
    private LeafCertificates _leaves = null!;
    private int _next;

    [GlobalSetup]
    public void Setup()
    {
        _ca = CertificateAuthority.Create(["example.com"], 30, TimeProvider.System);
        // The default cache size: after the first 1,024 mints every new host also evicts one.
        _leaves = new LeafCertificates(_ca, 1024, TimeProvider.System);
        for (var i = 0; i < Hosts; i++)
        {
            _fresh[i] = $"h{i}.example.com";
        }

        _leaves.For("api.example.com");
    }

    [GlobalCleanup]
    public void Cleanup() => _ca.Dispose();

    /// <summary>Names cycle after 65,536 mints: by then a name is long evicted from a 1,024-host cache, so each call mints.</summary>
    [Benchmark]
    public SslStreamCertificateContext FirstMint() => _leaves.For(_fresh[_next++ & (Hosts - 1)]);

    [Benchmark]
    public SslStreamCertificateContext CachedLookup() => _leaves.For("api.example.com");
}
