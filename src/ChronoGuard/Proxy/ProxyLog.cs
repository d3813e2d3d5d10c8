using Microsoft.Extensions.Logging;

namespace ChronoGuard.Proxy;

internal static partial class ProxyLog
{
    [LoggerMessage(EventId = 100, Level = LogLevel.Information, Message = "proxy listening on {Endpoint}")]
    public static partial void Listening(ILogger logger, string endpoint);

    [LoggerMessage(EventId = 101, Level = LogLevel.Warning, Message = "accept failed: {Error}")]
    public static partial void AcceptFailed(ILogger logger, string error);

    [LoggerMessage(EventId = 105, Level = LogLevel.Error, Message = "out of file descriptors ({Where}): new clients and dials are answered 503 descriptors_exhausted until some are free (this is said once per episode; raise RLIMIT_NOFILE or lower Proxy:MaxConnections)")]
    public static partial void DescriptorsExhausted(ILogger logger, string where);

    [LoggerMessage(EventId = 106, Level = LogLevel.Warning, Message = "RLIMIT_NOFILE {Limit} leaves room for {Allowed} connections ({PerConnection} descriptors each, {Open} open at start, {Reserve} in reserve), fewer than Proxy:MaxConnections {MaxConnections}: admitting {Allowed}")]
    public static partial void DescriptorLimit(ILogger logger, long limit, int allowed, int perConnection, int open, int reserve, int maxConnections);

    [LoggerMessage(EventId = 102, Level = LogLevel.Information, Message = "draining: {Open} connections open, waiting up to {TimeoutMs} ms")]
    public static partial void Draining(ILogger logger, int open, int timeoutMs);

    [LoggerMessage(EventId = 103, Level = LogLevel.Warning, Message = "drain timeout: closing {Open} connections")]
    public static partial void DrainAborting(ILogger logger, int open);

    [LoggerMessage(EventId = 104, Level = LogLevel.Debug, Message = "connection {ConnectionId} failed")]
    public static partial void ConnectionFailed(ILogger logger, long connectionId, Exception exception);

    [LoggerMessage(EventId = 120, Level = LogLevel.Information, Message = "DNS guard listening on {Endpoint} (UDP and TCP) for agent {Agent}, upstream {Upstream}")]
    public static partial void DnsListening(ILogger logger, System.Net.IPEndPoint endpoint, string agent, System.Net.IPEndPoint upstream);

    [LoggerMessage(EventId = 121, Level = LogLevel.Warning, Message = "DNS guard: {Transport} receive failed: {Error}")]
    public static partial void DnsReceiveFailed(ILogger logger, string transport, string error);

    [LoggerMessage(EventId = 122, Level = LogLevel.Error, Message = "DNS guard: a query failed unexpectedly")]
    public static partial void DnsQueryFailed(ILogger logger, Exception exception);
}
