using Microsoft.Extensions.Logging;

namespace ChronoGuard.Proxy;

internal static partial class ProxyLog
{
    [LoggerMessage(EventId = 100, Level = LogLevel.Information, Message = "proxy listening on {Endpoint}")]
    public static partial void Listening(ILogger logger, string endpoint);

    [LoggerMessage(EventId = 101, Level = LogLevel.Warning, Message = "accept failed: {Error}")]
    public static partial void AcceptFailed(ILogger logger, string error);

    [LoggerMessage(EventId = 102, Level = LogLevel.Information, Message = "draining: {Open} connections open, waiting up to {TimeoutMs} ms")]
    public static partial void Draining(ILogger logger, int open, int timeoutMs);

    [LoggerMessage(EventId = 103, Level = LogLevel.Warning, Message = "drain timeout: closing {Open} connections")]
    public static partial void DrainAborting(ILogger logger, int open);

    [LoggerMessage(EventId = 104, Level = LogLevel.Debug, Message = "connection {ConnectionId} failed")]
    public static partial void ConnectionFailed(ILogger logger, long connectionId, Exception exception);
}
