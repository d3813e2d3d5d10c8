using Microsoft.Extensions.Logging;

namespace ChronoGuard.Sidecar.Hosting;

internal static partial class SidecarLog
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "chronoguard {Version} proxy listening on {ProxyEndpoint}, stats on {StatsEndpoint}, audit log in {AuditDirectory}")]
    public static partial void Started(ILogger logger, string version, string proxyEndpoint, string statsEndpoint, string auditDirectory);

    [LoggerMessage(EventId = 42, Level = LogLevel.Information, Message = "{Setting} listening on {Endpoint} ({Protocol}, {Identity})")]
    public static partial void ListenerStarted(ILogger logger, string setting, string endpoint, string protocol, string identity);

    [LoggerMessage(EventId = 43, Level = LogLevel.Information, Message = "transparent capture: the pod's rules must redirect no connection of user {Uid} (this process) and none to {ExcludeCidrs} (Transparent:ExcludeCidrs)")]
    public static partial void TransparentRules(ILogger logger, uint uid, string excludeCidrs);

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "no policy file configured: OBSERVE MODE, every request is allowed and audited (set Policy:Path or --policy to enforce)")]
    public static partial void ObserveMode(ILogger logger);

    [LoggerMessage(EventId = 3, Level = LogLevel.Information, Message = "SIGTERM: draining")]
    public static partial void Stopping(ILogger logger);

    [LoggerMessage(EventId = 4, Level = LogLevel.Information, Message = "stopped")]
    public static partial void Stopped(ILogger logger);

    [LoggerMessage(EventId = 5, Level = LogLevel.Information, Message = "SIGHUP: reloading policy")]
    public static partial void Sighup(ILogger logger);

    [LoggerMessage(EventId = 6, Level = LogLevel.Information, Message = "policy loaded from {Path} (sha256 {Sha256}): {Agents} agents, {Policies} policies, {Patterns} domain patterns")]
    public static partial void PolicyLoaded(ILogger logger, string path, string sha256, int agents, int policies, int patterns);

    [LoggerMessage(EventId = 7, Level = LogLevel.Information, Message = "policy reloaded ({Trigger}) from {Path} (sha256 {Sha256}): {Agents} agents, {Policies} policies, {Patterns} domain patterns")]
    public static partial void PolicyReloaded(ILogger logger, string trigger, string path, string sha256, int agents, int policies, int patterns);

    [LoggerMessage(EventId = 8, Level = LogLevel.Error, Message = "policy reload ({Trigger}) rejected, the previous policy stays: {Error} (sha256 {Sha256})")]
    public static partial void PolicyRejected(ILogger logger, string trigger, string error, string sha256);

    [LoggerMessage(EventId = 9, Level = LogLevel.Warning, Message = "policy {Path} is in observe mode: decisions are audited but nothing is blocked")]
    public static partial void ObserveModeByFile(ILogger logger, string path);

    [LoggerMessage(EventId = 10, Level = LogLevel.Information, Message = "audit retention dropped old segments: the log now starts at seq {Seq}, anchored by prevHash {PrevHash}")]
    public static partial void AuditRetention(ILogger logger, long seq, string prevHash);

    [LoggerMessage(EventId = 40, Level = LogLevel.Error, Message = "audit writer fault: {Cause}; readiness dropped, requests that cannot be recorded are refused (or counted, with Audit:OnFailure=forward) until it recovers")]
    public static partial void AuditWriterFault(ILogger logger, string cause);

    [LoggerMessage(EventId = 41, Level = LogLevel.Warning, Message = "audit writer recovered: {Note}")]
    public static partial void AuditWriterRecovered(ILogger logger, string note);

    // The whole checkpoint as one line, so the log pipeline keeps a copy the node cannot rewrite.
    [LoggerMessage(EventId = 11, Level = LogLevel.Information, Message = "audit checkpoint seq {Seq} hash {Hash} time {Time} keyId {KeyId} sig {Sig} ({Stored})")]
    public static partial void AuditCheckpoint(ILogger logger, long seq, string hash, string time, string keyId, string sig, string stored);

    [LoggerMessage(EventId = 50, Level = LogLevel.Information, Message = "HTTPS inspection on: CA {Subject} (sha256 {Fingerprint}) valid until {NotAfter}, {Scope}; leaves cached for up to {CacheSize} hosts; upstream certificates judged by {Trust}")]
    public static partial void InspectionOn(ILogger logger, string subject, string fingerprint, string notAfter, string scope, int cacheSize, string trust);

    // Past its end every inspected tunnel fails its handshake: said at start while there is time to replace it.
    [LoggerMessage(EventId = 51, Level = LogLevel.Warning, Message = "the inspection CA {CertFile} expires on {NotAfter}, in {Days} days: inspected tunnels fail from then on (chronoguard ca init makes a new one; agents must trust it)")]
    public static partial void InspectionCaExpiring(ILogger logger, string certFile, string notAfter, int days);

    // Logging:Refusals (SPEC §3, §9), category chronoguard.refusals: one line per refusal with the fields
    // log tooling filters on; the audit seq finds the chained record (chronoguard export).
    [LoggerMessage(EventId = 60, Level = LogLevel.Warning, Message = "refused {Decision} {Reason}: agent {Agent} {Method} {Host}:{Port} from {SourceIp}, dialed {DialedIp}, status {Status}, audit seq {Seq}")]
    public static partial void Refused(ILogger logger, string decision, string reason, string agent, string method, string host, int port, string sourceIp, string dialedIp, int status, long seq);

    [LoggerMessage(EventId = 61, Level = LogLevel.Warning, Message = "observe mode forwarded what enforce refuses, {Decision} {Reason}: agent {Agent} {Method} {Host}:{Port} from {SourceIp}, dialed {DialedIp}, status {Status}, audit seq {Seq}")]
    public static partial void RefusalNotEnforced(ILogger logger, string decision, string reason, string agent, string method, string host, int port, string sourceIp, string dialedIp, int status, long seq);

    [LoggerMessage(EventId = 62, Level = LogLevel.Information, Message = "allowed {Decision} {Reason}: agent {Agent} {Method} {Host}:{Port} from {SourceIp}, dialed {DialedIp}, status {Status}, audit seq {Seq}")]
    public static partial void Decided(ILogger logger, string decision, string reason, string agent, string method, string host, int port, string sourceIp, string dialedIp, int status, long seq);

    [LoggerMessage(EventId = 63, Level = LogLevel.Warning, Message = "refusals counted, not recorded one by one ({Reason}) from {SourceIp}, first host {Host}, status {Status}, audit seq {Seq}: {Detail}")]
    public static partial void RefusalsCounted(ILogger logger, string reason, string sourceIp, string host, int status, long seq, string detail);

    [LoggerMessage(EventId = 64, Level = LogLevel.Warning, Message = "{Dropped} refusal log lines were not written (at most {PerSecond} a second); the audit log has every record (chronoguard export --not-decision ALLOW)")]
    public static partial void RefusalLinesDropped(ILogger logger, long dropped, int perSecond);
}
