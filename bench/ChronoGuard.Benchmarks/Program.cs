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

if (args.Length > 0 && args[0] == "forward-allocations")
{
    await ForwardAllocations.RunAsync(Console.Out, args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 50_000, args.Length > 2 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 1);
    return;
}

if (args.Length > 0 && args[0] == "dns-throughput")
{
    await DnsThroughput.RunAsync(Console.Out, args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 5, args.Length > 2 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 1, args.Length > 3 ? System.Net.IPEndPoint.Parse(args[3]) : null);
    return;
}

if (args.Length > 3 && args[0] == "dns-forward-latency")
{
    DnsForwardLatency.Run(Console.Out, int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture), System.Net.IPEndPoint.Parse(args[2]), int.Parse(args[3], System.Globalization.CultureInfo.InvariantCulture));
    return;
}

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
