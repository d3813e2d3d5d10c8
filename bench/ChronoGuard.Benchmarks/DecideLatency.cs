using System.Diagnostics;
using ChronoGuard.Policy;

namespace ChronoGuard.Benchmarks;

/// <summary>
/// The tail of Decide(): BenchmarkDotNet reports means, so this times 1,000,000 single calls (each
/// bracketed by two timestamp reads, which adds their ~20–40 ns to every sample) and prints percentiles.
/// Run: <c>dotnet run -c Release --project bench/ChronoGuard.Benchmarks -- decide-latency</c>.
/// </summary>
internal static class DecideLatency
{
    public static void Run(TextWriter output)
    {
        var bench = new PolicyBenchmarks();
        bench.Setup();
        try
        {
            output.WriteLine("| Decide (10,000 domains, 100 rules), one call | p50 ns | p99 ns | p99.9 ns | max ns |");
            output.WriteLine("| --- | ---: | ---: | ---: | ---: |");
            Row(output, "allowed domain", () => bench.DecideAllowed());
            Row(output, "port admitted by a port-scoped range", () => bench.DecidePortScoped());
            Row(output, "port one past the range, refused", () => bench.DecidePortRefused());
            Row(output, "allowedPorts port beside port-scoped patterns", () => bench.DecideAllowedBesidePorts());
            Row(output, "CONNECT to an inspected host", () => bench.DecideInspectedTunnel());
            Row(output, "credential steps, inner head carrying its placeholder", () => bench.CredentialInjected());
        }
        finally
        {
            bench.Cleanup();
        }
    }

    private static void Row(TextWriter output, string name, Func<int> decide)
    {
        const int n = 1_000_000;
        var samples = new long[n];
        for (var warm = 0; warm < 200_000; warm++)
        {
            decide();
        }

        for (var i = 0; i < n; i++)
        {
            var t0 = Stopwatch.GetTimestamp();
            decide();
            samples[i] = Stopwatch.GetTimestamp() - t0;
        }

        Array.Sort(samples);
        double Ns(double q) => samples[Math.Min(n - 1, (int)(q * n))] * 1e9 / Stopwatch.Frequency;
        output.WriteLine($"| {name} | {Ns(0.5):F0} | {Ns(0.99):F0} | {Ns(0.999):F0} | {samples[^1] * 1e9 / Stopwatch.Frequency:F0} |");
    }
}