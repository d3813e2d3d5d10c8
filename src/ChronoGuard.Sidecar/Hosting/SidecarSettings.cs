using System.Collections;
using ChronoGuard.Admin;
using ChronoGuard.Audit;
using ChronoGuard.Inspection;
using ChronoGuard.Proxy;
using Microsoft.Extensions.Configuration;

namespace ChronoGuard.Sidecar.Hosting;

/// <summary>The configuration, validated against <see cref="ConfigurationSchema"/> and bound once at start (source-generated binder).</summary>
internal sealed class SidecarSettings
{
    public required ProxyOptions Proxy { get; init; }

    public required SocksOptions Socks { get; init; }

    public required StatsSection Stats { get; init; }

    public required PolicySection Policy { get; init; }

    public required AuditOptions Audit { get; init; }

    public required InspectionOptions Inspection { get; init; }

    public required TransparentOptions Transparent { get; init; }

    public required DnsOptions Dns { get; init; }

    public AdminOptions Admin { get; init; } = new();

    /// <summary><c>Logging:Refusals</c>: <c>refusals</c> (default), <c>all</c> or <c>none</c> (validated with the rest).</summary>
    public string LogRefusals { get; init; } = "refusals";

    /// <summary>Validates, then binds; a bad value is a <see cref="StartupException"/> whose message is the one line to print.</summary>
    /// <param name="environment">The process environment (tests pass their own), checked for near misses of the prefix.</param>
    public static SidecarSettings Bind(IConfigurationRoot configuration, string? configFile = null, IDictionary? environment = null)
    {
        if (ConfigurationValidator.Validate(configuration, configFile, environment ?? Environment.GetEnvironmentVariables()) is { } error)
        {
            throw new StartupException(error);
        }

        // Every value was checked above, so the binder cannot meet one it fails to convert.
        var proxy = new ProxyOptions();
        configuration.GetSection("Proxy").Bind(proxy);
        var socks = new SocksOptions();
        configuration.GetSection("Socks").Bind(socks);
        var stats = new StatsSection();
        configuration.GetSection("Stats").Bind(stats);
        var policy = new PolicySection();
        configuration.GetSection("Policy").Bind(policy);
        var audit = new AuditOptions();
        configuration.GetSection("Audit").Bind(audit);
        var inspection = new InspectionOptions();
        configuration.GetSection("Inspection").Bind(inspection);
        var transparent = new TransparentOptions();
        configuration.GetSection("Transparent").Bind(transparent);
        var dns = new DnsOptions();
        configuration.GetSection("Dns").Bind(dns);
        var admin = new AdminOptions();
        configuration.GetSection("Admin").Bind(admin);
        return new SidecarSettings { Admin = admin, Proxy = proxy, Socks = socks, Stats = stats, Policy = policy, Audit = audit, Inspection = inspection, Transparent = transparent, Dns = dns,
            LogRefusals = (configuration["Logging:Refusals"] ?? "refusals").ToLowerInvariant() };
    }
}
