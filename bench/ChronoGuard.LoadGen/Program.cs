using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace ChronoGuard.LoadGen;

internal static class Program
{
    private static int s_signals;

    public static async Task<int> Main(string[] args)
    {
        Options options;
        try
        {
            options = Options.Parse(args);
        }
        catch (FormatException ex)
        {
            await Console.Error.WriteLineAsync("error: " + ex.Message).ConfigureAwait(false);
            await Console.Error.WriteLineAsync("run with --help for usage").ConfigureAwait(false);
            return 2;
        }
        if (options.Help)
        {
            await Console.Out.WriteLineAsync(Options.Usage).ConfigureAwait(false);
            return 0;
        }

        using var stop = new CancellationTokenSource();
        // The first SIGINT/SIGTERM ends the run gracefully (results still printed); a second one
        // is left to the default handler so a wedged run can always be killed.
        void OnSignal(PosixSignalContext context)
        {
            if (Interlocked.Increment(ref s_signals) == 1)
            {
                context.Cancel = true;
                stop.Cancel();
            }
        }
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);

        if (options.EchoListen is { } listen)
        {
            return await EchoServer.RunAsync(listen, stop.Token).ConfigureAwait(false);
        }
        return await RunLoadAsync(options, stop).ConfigureAwait(false);
    }

    private static async Task<int> RunLoadAsync(Options o, CancellationTokenSource stop)
    {
        EndPoint firstHop;
        try
        {
            firstHop = o.Proxy is { } proxy
                ? await ResolveAsync(proxy.HostNameType == UriHostNameType.IPv6 ? proxy.DnsSafeHost : proxy.IdnHost, proxy.Port, stop.Token).ConfigureAwait(false)
                : await ResolveAsync(o.TargetHost, o.TargetPort, stop.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException)
        {
            await Console.Error.WriteLineAsync("error: cannot resolve " + (o.ProxyDisplay ?? o.Target!.ToString()) + ": " + ex.Message).ConfigureAwait(false);
            return 1;
        }

        IPAddress? socksAddress = null;
        if (o.Socks && !o.SocksRemoteDns && !IPAddress.TryParse(o.TargetHost, out _))
        {
            // socks5:// (as curl has it): the client resolves, once, and the proxy gets an address.
            try
            {
                socksAddress = (await ResolveAsync(o.TargetHost, o.TargetPort, stop.Token).ConfigureAwait(false)).Address;
            }
            catch (Exception ex) when (ex is SocketException or OperationCanceledException)
            {
                await Console.Error.WriteLineAsync("error: cannot resolve " + o.TargetHost + ": " + ex.Message).ConfigureAwait(false);
                return 1;
            }
        }
        var ctx = RunContext.Create(o, firstHop, stop.Token, socksAddress);
        var workers = new WorkerStats[o.Concurrency];
        for (var i = 0; i < workers.Length; i++)
        {
            workers[i] = new WorkerStats();
        }

        var plan = o.Duration is { } d ? Report.Latency((long)d.TotalMicroseconds).Replace(" ", "", StringComparison.Ordinal) : "";
        if (o.Requests > 0)
        {
            plan = (plan.Length > 0 ? plan + " or " : "") + o.Requests.ToString(CultureInfo.InvariantCulture) + " requests";
        }
        await Console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"{o.Mode.ToString().ToLowerInvariant()} {o.Target} via {o.ProxyDisplay ?? "direct"} ({firstHop}), {o.Concurrency} workers, {plan} after {o.Warmup.TotalSeconds:0.##}s warm-up"))
            .ConfigureAwait(false);

        await Workers.PrimeAsync(stop.Token).ConfigureAwait(false);
        var startedAt = DateTimeOffset.UtcNow;
        var runStart = Stopwatch.GetTimestamp();
        ctx.MeasureStart = runStart + RunContext.TicksFrom(o.Warmup);
        if (o.Duration is { } duration)
        {
            ctx.MeasureEnd = ctx.MeasureStart + RunContext.TicksFrom(duration);
            stop.CancelAfter(o.Warmup + duration);
        }

        var tasks = new Task[workers.Length];
        for (var i = 0; i < tasks.Length; i++)
        {
            var w = workers[i];
            tasks[i] = Task.Run(() => Workers.RunAsync(ctx, w));
        }
        var all = Task.WhenAll(tasks);
        using var progressStop = new CancellationTokenSource();
        var progress = o.Progress ? ProgressAsync(ctx, workers, runStart, progressStop.Token) : Task.CompletedTask;

        // Ends on the duration timer, a signal, or (with -n) when every worker has run out of tickets.
        await Task.WhenAny(all, Task.Delay(Timeout.Infinite, stop.Token)).ConfigureAwait(false);
        var stopAt = Stopwatch.GetTimestamp();
        var interrupted = Volatile.Read(ref s_signals) > 0;
        await stop.CancelAsync().ConfigureAwait(false);
        if (await Task.WhenAny(all, Task.Delay(TimeSpan.FromSeconds(5))).ConfigureAwait(false) != all)
        {
            await Console.Error.WriteLineAsync("warning: some workers had not stopped 5 s after the end of the run").ConfigureAwait(false);
        }
        await progressStop.CancelAsync().ConfigureAwait(false);
        await progress.ConfigureAwait(false);

        var measured = Math.Max(0, Math.Min(stopAt, ctx.MeasureEnd) - ctx.MeasureStart) / (double)Stopwatch.Frequency;
        var (report, latency) = Report.Build(o, workers, measured, startedAt, interrupted);
        Report.PrintTable(report, Console.Out);
        try
        {
            if (o.JsonPath is not null)
            {
                Report.WriteJson(report, o.JsonPath);
            }
            if (o.HistogramPath is not null)
            {
                Report.WriteHistogramCsv(latency, o.HistogramPath);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            await Console.Error.WriteLineAsync("error: cannot write results: " + ex.Message).ConfigureAwait(false);
            return 1;
        }
        return 0;
    }

    private static async Task<IPEndPoint> ResolveAsync(string host, int port, CancellationToken ct)
    {
        if (IPAddress.TryParse(host, out var ip))
        {
            return new IPEndPoint(ip, port);
        }
        var addresses = await Dns.GetHostAddressesAsync(host, ct).ConfigureAwait(false);
        // Resolved once for the whole run so DNS is not part of any sample. IPv4 first: "localhost"
        // often lists ::1 first while test servers bind 127.0.0.1.
        foreach (var a in addresses)
        {
            if (a.AddressFamily == AddressFamily.InterNetwork)
            {
                return new IPEndPoint(a, port);
            }
        }
        return addresses.Length > 0
            ? new IPEndPoint(addresses[0], port)
            : throw new SocketException((int)SocketError.HostNotFound);
    }

    /// <summary>
    /// One stderr line per second: the rate and p99 of that second alone (bucket-count differences
    /// between snapshots), so a stall shows up immediately instead of being averaged away.
    /// </summary>
    private static async Task ProgressAsync(RunContext ctx, WorkerStats[] workers, long runStart, CancellationToken ct)
    {
        var tunnel = ctx.Options.Mode == LoadMode.Tunnel;
        var terminal = !Console.IsErrorRedirected;
        var previous = new long[Histogram.BucketCount];
        var current = new long[Histogram.BucketCount];
        var interval = new long[Histogram.BucketCount];
        long previousIn = 0, previousOut = 0;
        var previousAt = runStart;
        var lastLength = 0;
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        try
        {
            while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
            {
                var now = Stopwatch.GetTimestamp();
                Array.Clear(current);
                long errors = 0, bytesIn = 0, bytesOut = 0;
                foreach (var w in workers)
                {
                    w.Latency.CopyCountsTo(current);
                    w.WarmupLatency.CopyCountsTo(current);
                    errors += Volatile.Read(ref w.ErrorsAll);
                    bytesIn += Volatile.Read(ref w.BytesInAll);
                    bytesOut += Volatile.Read(ref w.BytesOutAll);
                }
                long count = 0;
                for (var i = 0; i < interval.Length; i++)
                {
                    interval[i] = current[i] - previous[i];
                    count += interval[i];
                }
                var seconds = Math.Max(1e-9, (now - previousAt) / (double)Stopwatch.Frequency);
                var elapsed = (int)Math.Round((now - runStart) / (double)Stopwatch.Frequency);
                var phase = now < ctx.MeasureStart ? "  (warm-up)" : "";
                var line = tunnel
                    ? string.Create(CultureInfo.InvariantCulture,
                        $"[{elapsed}s] up {(bytesOut - previousOut) / seconds / 1e6:F1} MB/s  down {(bytesIn - previousIn) / seconds / 1e6:F1} MB/s  errors {errors}{phase}")
                    : string.Create(CultureInfo.InvariantCulture,
                        $"[{elapsed}s] {count / seconds:F0} req/s  p99 {(count == 0 ? "-" : Report.Latency(Histogram.ValueAtPercentile(interval, count, 99)))}  errors {errors}{phase}");
                if (terminal)
                {
                    await Console.Error.WriteAsync("\r" + line.PadRight(lastLength)).ConfigureAwait(false);
                    lastLength = line.Length;
                }
                else
                {
                    await Console.Error.WriteLineAsync(line).ConfigureAwait(false);
                }
                (previous, current) = (current, previous);
                previousIn = bytesIn;
                previousOut = bytesOut;
                previousAt = now;
            }
        }
        catch (OperationCanceledException)
        {
        }
        if (terminal && lastLength > 0)
        {
            await Console.Error.WriteLineAsync().ConfigureAwait(false);
        }
    }
}
