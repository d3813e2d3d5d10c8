using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace ChronoGuard.LoadGen;

internal sealed class LatencyReport
{
    public long P50 { get; init; }
    public long P90 { get; init; }
    public long P99 { get; init; }
    [JsonPropertyName("p99_9")]
    public long P999 { get; init; }
    public long Max { get; init; }
    public long Min { get; init; }
    public double Mean { get; init; }
}

internal sealed class RunReport
{
    public string Tool { get; init; } = "chronoguard-loadgen";
    public string? Version { get; init; }
    public string? Label { get; init; }
    public required string Mode { get; init; }
    public required string Target { get; init; }
    /// <summary>Absent when the target was driven directly.</summary>
    public string? Proxy { get; init; }
    public bool Tls { get; init; }
    public int Concurrency { get; init; }
    public required string StartedAt { get; init; }
    public double WarmupSeconds { get; init; }
    public double DurationSeconds { get; init; }
    /// <summary>Stopped by a signal before the planned end.</summary>
    public bool Interrupted { get; init; }
    /// <summary>Completed responses (any status); tunnels established in tunnel mode.</summary>
    public long Requests { get; init; }
    public double RequestsPerSecond { get; init; }
    public long Ok { get; init; }
    public long Errors { get; init; }
    public required Dictionary<string, long> ErrorsByKind { get; init; }
    /// <summary>Request latency; tunnel set-up latency in tunnel mode.</summary>
    public required LatencyReport LatencyUs { get; init; }
    public long BytesRead { get; init; }
    public long BytesWritten { get; init; }
    /// <summary>10^6 bytes per second read from the tunnel/connection.</summary>
    public double MbPerSecondDown { get; init; }
    public double MbPerSecondUp { get; init; }
    public long? Tunnels { get; init; }
    /// <summary>connect --keep-alive: many requests per tunnel (Tunnels counts the tunnels opened, warm-up included).</summary>
    public bool? KeepAlive { get; init; }
    /// <summary>The origin certificate was validated against --ca rather than the system store.</summary>
    public string? CaFile { get; init; }
    /// <summary>--no-connection-close: one request per tunnel without Connection: close, closed by the client.</summary>
    public bool? NoConnectionClose { get; init; }
    /// <summary>--no-tls-resume: every handshake was a full one.</summary>
    public bool? NoTlsResume { get; init; }
}

[JsonSourceGenerationOptions(
    WriteIndented = true,
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(RunReport))]
internal sealed partial class ReportJsonContext : JsonSerializerContext;

internal static class Report
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Percentiles written by --histogram-out: dense where latency curves bend (the tail).</summary>
    private static readonly double[] CsvPercentiles = BuildCsvPercentiles();

    public static (RunReport Report, Histogram Latency) Build(Options o, WorkerStats[] workers, double seconds, DateTimeOffset startedAt, bool interrupted)
    {
        var latency = new Histogram();
        var errors = new long[ErrorKinds.Count];
        long bytesIn = 0, bytesOut = 0, tunnels = 0;
        foreach (var w in workers)
        {
            latency.Add(w.Latency);
            if (o.Mode == LoadMode.Tunnel)
            {
                // Tunnels are normally all opened during warm-up; their set-up times are still the sample.
                latency.Add(w.WarmupLatency);
            }
            for (var i = 0; i < errors.Length; i++)
            {
                errors[i] += w.Errors[i];
            }
            bytesIn += w.BytesIn;
            bytesOut += w.BytesOut;
            tunnels += w.Tunnels;
        }
        var byKind = new Dictionary<string, long>(StringComparer.Ordinal);
        long errorTotal = 0, statusErrors = 0;
        for (var i = 0; i < errors.Length; i++)
        {
            if (errors[i] == 0)
            {
                continue;
            }
            byKind[ErrorKinds.Name(i)] = errors[i];
            errorTotal += errors[i];
            if (ErrorKinds.IsStatus(i))
            {
                statusErrors += errors[i];
            }
        }
        var requests = o.Mode == LoadMode.Tunnel ? tunnels : latency.TotalCount;
        var report = new RunReport
        {
            Version = typeof(Report).Assembly.GetName().Version?.ToString(3),
            Label = o.Label,
            Mode = o.Mode.ToString().ToLowerInvariant(),
            Target = o.Target!.OriginalString,
            Proxy = o.ProxyDisplay,
            Tls = o.Tls,
            Concurrency = o.Concurrency,
            StartedAt = startedAt.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", Inv),
            WarmupSeconds = o.Warmup.TotalSeconds,
            DurationSeconds = Math.Round(seconds, 3),
            Interrupted = interrupted,
            Requests = requests,
            RequestsPerSecond = o.Mode == LoadMode.Tunnel || seconds <= 0 ? 0 : Math.Round(requests / seconds, 1),
            Ok = o.Mode == LoadMode.Tunnel ? tunnels : requests - statusErrors,
            Errors = errorTotal,
            ErrorsByKind = byKind,
            LatencyUs = new LatencyReport
            {
                P50 = latency.ValueAtPercentile(50),
                P90 = latency.ValueAtPercentile(90),
                P99 = latency.ValueAtPercentile(99),
                P999 = latency.ValueAtPercentile(99.9),
                Max = latency.Max,
                Min = latency.Min,
                Mean = Math.Round(latency.Mean, 1),
            },
            BytesRead = bytesIn,
            BytesWritten = bytesOut,
            MbPerSecondDown = seconds <= 0 ? 0 : Math.Round(bytesIn / seconds / 1e6, 2),
            MbPerSecondUp = seconds <= 0 ? 0 : Math.Round(bytesOut / seconds / 1e6, 2),
            Tunnels = o.Mode == LoadMode.Tunnel || o.KeepAlive ? tunnels : null,
            KeepAlive = o.KeepAlive ? true : null,
            CaFile = o.CaFile,
            NoTlsResume = o.NoTlsResume ? true : null,
            NoConnectionClose = o.NoConnectionClose ? true : null,
        };
        return (report, latency);
    }

    public static void PrintTable(RunReport r, TextWriter output)
    {
        var sb = new StringBuilder();
        sb.Append(Inv, $"{r.Mode}{(r.KeepAlive == true ? " keep-alive" : "")} {r.Target} via {r.Proxy ?? "direct"}{(r.Tls ? " tls" : "")}{(r.CaFile is null ? "" : " (origin validated against --ca)")}{(r.NoTlsResume == true ? " no-resume" : "")}{(r.NoConnectionClose == true ? " no-connection-close" : "")}  c={r.Concurrency}");
        if (r.Label is not null)
        {
            sb.Append(Inv, $"  [{r.Label}]");
        }
        sb.AppendLine();
        Row(sb, "measured", string.Create(Inv, $"{r.DurationSeconds:F2} s (+{r.WarmupSeconds:0.##} s warm-up){(r.Interrupted ? ", interrupted" : "")}"));
        var lat = r.LatencyUs;
        var latency = string.Create(Inv, $"p50 {lat.P50}  p90 {lat.P90}  p99 {lat.P99}  p99.9 {lat.P999}  max {lat.Max}  mean {lat.Mean:F0}");
        if (r.Tunnels is { } tunnels && r.KeepAlive != true)
        {
            Row(sb, "tunnels", tunnels.ToString(Inv));
            Row(sb, "up", string.Create(Inv, $"{r.MbPerSecondUp:F1} MB/s  ({Bytes(r.BytesWritten)} written)"));
            Row(sb, "down", string.Create(Inv, $"{r.MbPerSecondDown:F1} MB/s  ({Bytes(r.BytesRead)} read)"));
            Row(sb, "setup µs", latency);
        }
        else
        {
            Row(sb, "requests", string.Create(Inv, $"{r.Requests}  ({r.RequestsPerSecond:F1} req/s, {r.Ok} ok)"));
            Row(sb, "latency µs", latency);
            Row(sb, "bytes", string.Create(Inv, $"read {Bytes(r.BytesRead)}  written {Bytes(r.BytesWritten)}"));
            if (r.KeepAlive == true)
            {
                Row(sb, "tunnels", string.Create(Inv, $"{r.Tunnels} opened (warm-up included)"));
            }
        }
        Row(sb, "errors", r.Errors.ToString(Inv));
        foreach (var (kind, count) in r.ErrorsByKind)
        {
            Row(sb, "  " + kind, count.ToString(Inv));
        }
        output.Write(sb.ToString());
        output.Flush();
    }

    public static void WriteJson(RunReport r, string path) =>
        File.WriteAllText(path, JsonSerializer.Serialize(r, ReportJsonContext.Default.RunReport) + "\n");

    public static void WriteHistogramCsv(Histogram latency, string path)
    {
        var sb = new StringBuilder("percentile,latency_us\n");
        foreach (var p in CsvPercentiles)
        {
            sb.Append(Inv, $"{p:0.###},{latency.ValueAtPercentile(p)}\n");
        }
        File.WriteAllText(path, sb.ToString());
    }

    /// <summary>Latency for humans: µs below 1 ms, then ms, then s, at about three significant digits.</summary>
    public static string Latency(long micros) => micros switch
    {
        < 1_000 => string.Create(Inv, $"{micros} µs"),
        < 1_000_000 => string.Create(Inv, $"{micros / 1e3:0.##} ms"),
        _ => string.Create(Inv, $"{micros / 1e6:0.##} s"),
    };

    private static string Bytes(long n) => n switch
    {
        < 1_000 => string.Create(Inv, $"{n} B"),
        < 1_000_000 => string.Create(Inv, $"{n / 1e3:F1} kB"),
        < 1_000_000_000 => string.Create(Inv, $"{n / 1e6:F1} MB"),
        _ => string.Create(Inv, $"{n / 1e9:F2} GB"),
    };

    private static void Row(StringBuilder sb, string name, string value) =>
        sb.Append("  ").Append(name.PadRight(22)).Append(value).Append('\n');

    private static double[] BuildCsvPercentiles()
    {
        var list = new List<double>();
        for (var p = 0; p < 99; p++)
        {
            list.Add(p);
        }
        for (var p = 990; p < 999; p++)
        {
            list.Add(p / 10.0);
        }
        for (var p = 9990; p <= 9999; p++)
        {
            list.Add(p / 100.0);
        }
        return [.. list];
    }
}
