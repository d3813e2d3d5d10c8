using Microsoft.Extensions.Logging;

namespace ChronoGuard.Sidecar.Hosting;

internal static partial class SidecarLog
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "chronoguard {Version} proxy listening on {ProxyEndpoint}, stats on {StatsEndpoint}")]
    public static partial void Started(ILogger logger, string version, string proxyEndpoint, string statsEndpoint);

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "no policy file configured: OBSERVE MODE, every request is allowed and audited (set Policy:Path or --policy to enforce)")]
    public static partial void ObserveMode(ILogger logger);

    [LoggerMessage(EventId = 3, Level = LogLevel.Information, Message = "SIGTERM: draining")]
    public static partial void Stopping(ILogger logger);

    [LoggerMessage(EventId = 4, Level = LogLevel.Information, Message = "stopped")]
    public static partial void Stopped(ILogger logger);

    [LoggerMessage(EventId = 5, Level = LogLevel.Information, Message = "SIGHUP: reloading policy")]
    public static partial void Sighup(ILogger logger);
}
