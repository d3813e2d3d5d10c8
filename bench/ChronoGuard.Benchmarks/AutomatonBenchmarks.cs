using BenchmarkDotNet.Attributes;
using ChronoGuard.Policy;

namespace ChronoGuard.Benchmarks;

[MemoryDiagnoser]
public class AutomatonBenchmarks
{
    private string[] _patterns = null!;

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(100_000);
        _patterns = new string[100_000];
        for (var i = 0; i < _patterns.Length; i++)
        {
            var labels = random.Next(2, 5);
            var parts = new string[labels];
            for (var l = 0; l < labels; l++)
            {
                parts[l] = new string(Enumerable.Range(0, random.Next(2, 10)).Select(_ => (char)('a' + random.Next(26))).ToArray());
            }

            _patterns[i] = (random.Next(3) == 0 ? "*." : string.Empty) + string.Join('.', parts);
        }
    }

    [Benchmark]
    public int Build100k() => DomainAutomaton.Build(_patterns).StateCount;
}
