using BenchmarkDotNet.Running;
using ChronoGuard.Benchmarks;

if (args.Length > 0 && args[0] == "audit-throughput")
{
    AuditThroughput.Run(Console.Out);
    return;
}

if (args.Length > 0 && args[0] == "decide-latency")
{
    DecideLatency.Run(Console.Out);
    return;
}

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
