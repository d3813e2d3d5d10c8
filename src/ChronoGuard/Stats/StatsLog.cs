using Microsoft.Extensions.Logging;

namespace ChronoGuard.Stats;

internal static partial class StatsLog
{
    [LoggerMessage(EventId = 200, Level = LogLevel.Warning, Message = "stats listener: accept failing ({Error}); retrying with backoff up to 1 s, logged once until it recovers")]
    public static partial void AcceptFailing(ILogger logger, string error);

    [LoggerMessage(EventId = 201, Level = LogLevel.Information, Message = "stats listener: accepting again after {Failures} failed accepts")]
    public static partial void AcceptRecovered(ILogger logger, int failures);
}
