using Microsoft.Extensions.Logging;

namespace ChronoGuard.Approvals;

internal static partial class ApprovalLog
{
    [LoggerMessage(EventId = 920, Level = LogLevel.Warning, Message = "approval {Id} pending: agent {Agent} asks for {Method} {Host}:{Port}, held up to {Seconds} s (chronoguard approve {Id} | chronoguard deny {Id})")]
    public static partial void Pending(ILogger logger, string id, string agent, string method, string host, int port, int seconds);

    [LoggerMessage(EventId = 921, Level = LogLevel.Information, Message = "approval {Id} {Outcome}: agent {Agent} {Host}:{Port}, {Held} held request(s) {Result}")]
    public static partial void Settled(ILogger logger, string id, string outcome, string agent, string host, int port, int held, string result);

    [LoggerMessage(EventId = 923, Level = LogLevel.Information, Message = "approval {Id} closed unanswered: agent {Agent} {Host}:{Port}, {Why}")]
    public static partial void Closed(ILogger logger, string id, string agent, string host, int port, string why);

    [LoggerMessage(EventId = 922, Level = LogLevel.Warning, Message = "approval queue full ({Capacity} open, Admin:MaxPending): agent {Agent} {Host}:{Port} refused at once; logged once until the queue has room")]
    public static partial void QueueFull(ILogger logger, int capacity, string agent, string host, int port);
}
