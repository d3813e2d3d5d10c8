using Microsoft.Extensions.Logging;

namespace ChronoGuard.Admin;

internal static partial class AdminLog
{
    [LoggerMessage(EventId = 900, Level = LogLevel.Warning, Message = "admin listener: accept failing ({Error}); retrying with backoff up to 1 s, logged once until it recovers")]
    public static partial void AcceptFailing(ILogger logger, string error);

    [LoggerMessage(EventId = 901, Level = LogLevel.Information, Message = "admin listener: accepting again after {Failures} failed accepts")]
    public static partial void AcceptRecovered(ILogger logger, int failures);

    [LoggerMessage(EventId = 902, Level = LogLevel.Information, Message = "admin: {Actor} {Method} {Path} -> {Status}")]
    public static partial void Served(ILogger logger, string actor, string method, string path, int status);

    [LoggerMessage(EventId = 903, Level = LogLevel.Warning, Message = "admin: refused {Method} {Path} from {Remote}: no valid bearer token (401)")]
    public static partial void Unauthorized(ILogger logger, string method, string path, string remote);

    [LoggerMessage(EventId = 904, Level = LogLevel.Error, Message = "admin: {Method} {Path} failed: {Error}")]
    public static partial void Failed(ILogger logger, string method, string path, string error);

    [LoggerMessage(EventId = 905, Level = LogLevel.Warning, Message = "grants.json {File}: grant {Id} is refused: {Problem}")]
    public static partial void GrantRefused(ILogger logger, string file, string id, string problem);

    [LoggerMessage(EventId = 906, Level = LogLevel.Information, Message = "runtime grants: {Count} restored from {File}")]
    public static partial void GrantsRestored(ILogger logger, int count, string file);

    [LoggerMessage(EventId = 907, Level = LogLevel.Error, Message = "runtime grants: {File} cannot be read ({Problem}); starting with none")]
    public static partial void GrantsUnreadable(ILogger logger, string file, string problem);

    [LoggerMessage(EventId = 908, Level = LogLevel.Information, Message = "runtime grant {Id} {Change} by {Actor}: agent {Agent} may reach {Domains} until {Expires} ({Reason})")]
    public static partial void GrantChanged(ILogger logger, string id, string change, string actor, string agent, string domains, string expires, string reason);
}
