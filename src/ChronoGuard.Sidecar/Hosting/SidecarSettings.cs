using ChronoGuard.Proxy;
using Microsoft.Extensions.Configuration;

namespace ChronoGuard.Sidecar.Hosting;

/// <summary>The configuration, bound once at start (source-generated binder) and validated.</summary>
internal sealed class SidecarSettings
{
    public required ProxyOptions Proxy { get; init; }

    public required StatsSection Stats { get; init; }

    public required PolicySection Policy { get; init; }

    public required IConfigurationSection Audit { get; init; }

    public static SidecarSettings Bind(IConfiguration configuration)
    {
        var proxy = new ProxyOptions();
        configuration.GetSection("Proxy").Bind(proxy);
        var stats = new StatsSection();
        configuration.GetSection("Stats").Bind(stats);
        var policy = new PolicySection();
        configuration.GetSection("Policy").Bind(policy);

        Endpoints.Parse(proxy.Listen, "Proxy:Listen");
        Endpoints.Parse(stats.Listen, "Stats:Listen");
        Positive(proxy.MaxConnections, "Proxy:MaxConnections");
        Positive(proxy.MaxTunnelsPerAgent, "Proxy:MaxTunnelsPerAgent");
        Positive(proxy.ConnectTimeoutMs, "Proxy:ConnectTimeoutMs");
        Positive(proxy.HeaderTimeoutMs, "Proxy:HeaderTimeoutMs");
        Positive(proxy.IdleTimeoutMs, "Proxy:IdleTimeoutMs");
        Positive(proxy.DrainTimeoutMs, "Proxy:DrainTimeoutMs");
        if (proxy.MaxHeaderBytes is < 1024 or > 1024 * 1024)
        {
            throw new FormatException($"Proxy:MaxHeaderBytes: {proxy.MaxHeaderBytes} is outside 1024..1048576");
        }

        return new SidecarSettings { Proxy = proxy, Stats = stats, Policy = policy, Audit = configuration.GetSection("Audit") };
    }

    private static void Positive(int value, string key)
    {
        if (value <= 0)
        {
            throw new FormatException($"{key}: {value} must be greater than 0");
        }
    }
}
