using System.Buffers;
using System.Diagnostics;
using System.Net;
using System.Text;
using ChronoGuard.Audit;
using ChronoGuard.Http;
using ChronoGuard.Metrics;
using ChronoGuard.Policy;

namespace ChronoGuard.Proxy;

/// <summary>
/// The gate with a policy behind it: authenticates, decides in SPEC order, guards resolved addresses,
/// judges the ClientHello, accounts tunnels and egress, records, and closes tunnels the policy no
/// longer allows. In observe mode every decision is computed and reported, but bytes always flow.
/// </summary>
internal sealed class PolicyGate(PolicyEngine engine, TimeProvider time, AuditWriter? audit = null, ProxyMetrics? metrics = null) : IRequestGate
{
    private readonly ProxyMetrics _metrics = metrics ?? new ProxyMetrics(DecisionReasons.Labels);
    private readonly UnauthenticatedLimiter? _limiter = audit is { Options.UnauthenticatedPerSecond: > 0 and var n } ? new UnauthenticatedLimiter(n) : null;

    // Refused DNS questions are bounded the same way (SPEC §10) but counted apart, so a count says
    // which kind of refusal it stands for and one flood cannot hide the other's records.
    private readonly UnauthenticatedLimiter? _dnsLimiter = audit is { Options.UnauthenticatedPerSecond: > 0 and var d } ? new UnauthenticatedLimiter(d) : null;

    /// <summary>The <c>reason</c> of the system record that carries a count of refused DNS questions.</summary>
    public const string DnsSuppressedReason = "dns_suppressed";
    private long _seenVersion = -1;
    private long _seenMinute;

    public PolicyEngine Engine => engine;

    public ProxyMetrics Metrics => _metrics;

    public RequestDecision Decide(in ConnectionInfo connection, in GateRequest request)
    {
        var decision = new RequestDecision();
        if (audit is not null && audit.Admit() == AuditAdmission.Refuse)
        {
            // A faulted writer refuses before anything is decided or reserved: nothing is forwarded
            // that cannot be recorded (commit-before-forward, and batched with Audit:OnFailure=refuse).
            decision.Result = DecisionResult.Refuse(Decision.Deny, 503, ProxyReasons.AuditUnavailable);
            decision.Identity = AuditIdentity.Unauthenticated;
            return decision;
        }

        var started = Stopwatch.GetTimestamp();
        var now = time.GetUtcNow();
        // The one read of the current policy for this request: every later step reads decision.Policy.
        var policy = decision.Policy = engine.Current;
        Span<byte> claimed = stackalloc byte[CompiledPolicy.MaxClaimedIdBytes];
        var auth = Authenticate(policy, request, claimed, out var agent, out var claimedLength, out decision.Identity);
        decision.Agent = agent;
        if (auth != AuthOutcome.Ok)
        {
            decision.Result = auth switch
            {
                AuthOutcome.Suspended => DecisionResult.Refuse(Decision.Deny, 403, Reasons.Suspended),
                // A request with no credentials is the first half of the normal 407 challenge round
                // trip (clients send credentials only after it): told apart from a real denial.
                AuthOutcome.Missing => DecisionResult.Refuse(Decision.Deny, 407, Reasons.AuthRequired),
                _ => DecisionResult.Refuse(Decision.Deny, 407, Reasons.BadCredentials),
            };
            if (auth == AuthOutcome.Invalid && claimedLength > 0)
            {
                // Failure path only: the claimed id is kept for the record, marked unauthenticated.
                decision.Agent = null;
                decision.ClaimedAgent = Encoding.ASCII.GetString(claimed[..claimedLength]);
            }
        }
        else
        {
            Judge(ref decision, policy, agent!, connection, request, now, started);
        }

        decision.Allowed = decision.Result.IsAllow || policy.IsObserve;
        _metrics.DecisionDuration.Observe(Stopwatch.GetTimestamp() - started);
        if (auth == AuthOutcome.Ok)
        {
            // Only requests that passed authentication feed the domain analytics (SPEC §5): a client
            // without credentials must not be able to make its host the top domain.
            _metrics.RecordDomain(request.Host, agent!.Runtime.Index, now.UtcTicks / TimeSpan.TicksPerMinute);
        }

        return decision;
    }

    /// <summary>
    /// SPEC §4 after authentication, for an agent already known: the policy's decision, then the
    /// credential binding, then the tunnel slot. Shared by <see cref="Decide"/> and <see cref="Reconsider"/>.
    /// </summary>
    private static void Judge(ref RequestDecision decision, CompiledPolicy policy, AgentPlan agent, in ConnectionInfo connection, in GateRequest request, DateTimeOffset now, long started)
    {
        var facts = new RequestFacts(
            request.Host,
            request.Port,
            request.IsTunnel ? "CONNECT"u8 : request.Method,
            request.Path,
            request.UserAgent,
            connection.Remote?.Address,
            request.IsTunnel);
        decision.Result = request.HasPathParameters
            ? policy.Decide(agent, facts with { PathWithoutParameters = request.PathWithoutParameters }, now, started)
            : policy.Decide(agent, facts, now, started);
        if (decision.Result.IsAllow && policy.Credentials.Length != 0)
        {
            // Before the tunnel slot, so a misdirected CONNECT holds none; a policy without
            // credentials never looks at the head.
            decision.Result = policy.ApplyCredentials(agent, request.Host, request.Port, request.RawHead, request.FrontEnd == FrontEnd.Inspected, request.IsTunnel, now, started, decision.Result);
            decision.Credential = decision.Result.IsAllow ? decision.Result.Credential : null;
        }

        if (decision.Result.IsAllow && request.IsTunnel)
        {
            if (agent.Runtime.TryOpenTunnel(policy.MaxTunnelsPerAgent))
            {
                decision.HoldsTunnelSlot = true;
                decision.Inspect = decision.Result.Inspect;
            }
            else
            {
                decision.Result = DecisionResult.Refuse(Decision.RateLimited, 429, Reasons.TunnelLimit, retryAfter: 1);
            }
        }
    }

    public RequestDecision Reconsider(in ConnectionInfo connection, in RequestDecision held, in GateRequest request)
    {
        var decision = new RequestDecision { Identity = held.Identity, Agent = held.Agent };
        if (audit is not null && audit.Admit() == AuditAdmission.Refuse)
        {
            decision.Result = DecisionResult.Refuse(Decision.Deny, 503, ProxyReasons.AuditUnavailable);
            return decision;
        }

        var started = Stopwatch.GetTimestamp();
        var now = time.GetUtcNow();
        // The policy current now, not the one the request was held under: a reload while it waited
        // (an agent removed, a host blocked) decides, as it would for a request arriving now.
        var policy = decision.Policy = engine.Current;
        if (held.Agent is null || !policy.AgentsById.TryGetValue(held.Agent.Id, out var agent))
        {
            decision.Result = DecisionResult.Refuse(Decision.Deny, 403, Reasons.PolicyRevoked);
            return decision;
        }

        decision.Agent = agent;
        if (agent.Suspended)
        {
            decision.Result = DecisionResult.Refuse(Decision.Deny, 403, Reasons.Suspended);
            return decision;
        }

        Judge(ref decision, policy, agent, connection, request, now, started);
        decision.Allowed = decision.Result.IsAllow || policy.IsObserve;
        return decision;
    }

    /// <summary>
    /// Who the agent is (SPEC §8): a listener bound to an agent identifies it without credentials, and
    /// credentials sent there anyway must be that agent's (else 407); elsewhere the credentials decide.
    /// The built-in anonymous agent of a policy-less run proves nothing and is recorded unauthenticated.
    /// </summary>
    private static AuthOutcome Authenticate(CompiledPolicy policy, in GateRequest request, Span<byte> claimed, out AgentPlan? agent, out int claimedLength, out AuditIdentity identity)
    {
        var credentials = request.Credentials;
        var auth = credentials.IsPair
            ? policy.Authenticate(credentials.Id, credentials.Token, claimed, out agent, out claimedLength)
            : policy.Authenticate(credentials.Header, claimed, out agent, out claimedLength);
        identity = auth == AuthOutcome.Ok && !ReferenceEquals(agent, policy.Anonymous) ? AuditIdentity.Credential : AuditIdentity.Unauthenticated;
        if (request.ListenerAgent is not { } bound || policy.Anonymous is not null)
        {
            return auth;
        }

        if (auth == AuthOutcome.Missing)
        {
            if (!policy.AgentsById.TryGetValue(bound, out agent))
            {
                // The policy no longer knows the listener's agent (a reload removed it): nobody may use it.
                return AuthOutcome.Invalid;
            }

            identity = request.Redirected ? AuditIdentity.Transparent : AuditIdentity.Listener;
            return agent.Suspended ? AuthOutcome.Suspended : AuthOutcome.Ok;
        }

        if (auth is AuthOutcome.Ok or AuthOutcome.Suspended && !string.Equals(agent!.Id, bound, StringComparison.Ordinal))
        {
            // Valid credentials of another agent on a bound listener: it is not that agent's listener.
            var id = agent!.Id.AsSpan();
            claimedLength = Encoding.ASCII.GetBytes(id[..Math.Min(id.Length, claimed.Length)], claimed);
            agent = null;
            identity = AuditIdentity.Unauthenticated;
            return AuthOutcome.Invalid;
        }

        return auth;
    }

    public AuthOutcome CheckCredentials(in AgentCredentials credentials, string? listenerAgent)
    {
        var request = new GateRequest { FrontEnd = FrontEnd.Socks, Host = default, Port = 0, Credentials = credentials, ListenerAgent = listenerAgent };
        Span<byte> claimed = stackalloc byte[CompiledPolicy.MaxClaimedIdBytes];
        return Authenticate(engine.Current, request, claimed, out _, out _, out _);
    }

    public bool RequiresCredentials => engine.Current.Anonymous is null;

    public void UpstreamConnected(long elapsedTicks) => _metrics.UpstreamConnect.Observe(elapsedTicks);

    public bool AcceptAddress(in RequestDecision decision, IPAddress address, out DecisionResult judged)
    {
        var policy = PolicyOf(decision);
        judged = policy.CheckResolved(address);
        return judged.IsAllow || policy.IsObserve;
    }

    public bool RequiresSniCheck(in RequestDecision decision) =>
        PolicyOf(decision).Network.RequireSniMatch && !IPAddress.TryParse(decision.Host, out _);

    public SniVerdict CheckClientHello(in RequestDecision decision, in ReadOnlySequence<byte> firstBytes, ClientHelloEnd end, out DecisionResult judged)
    {
        judged = decision.Result;
        Span<byte> sni = stackalloc byte[256];
        var result = TlsClientHello.TryGetSni(firstBytes, sni, out var length);
        string? reason = result switch
        {
            TlsClientHello.Result.NeedMore => end switch
            {
                ClientHelloEnd.Open => null,
                ClientHelloEnd.TimedOut => ProxyReasons.SniTimeout,
                _ => firstBytes.IsEmpty && decision.Port != 443 ? string.Empty : Reasons.NotTls,
            },
            // Non-TLS bytes are only refused on 443 (SPEC §4); a tunnel on another port may carry any protocol.
            TlsClientHello.Result.NotTls => decision.Port == 443 ? Reasons.NotTls : string.Empty,
            TlsClientHello.Result.NoSni => Reasons.SniMissing,
            TlsClientHello.Result.EncryptedClientHello => Reasons.SniEch,
            TlsClientHello.Result.Malformed => Reasons.NotTls, // refused on every port: TLS-shaped, but no client sends it
            _ => Ascii.EqualsIgnoreCase(sni[..length], decision.Host) ? string.Empty : Reasons.SniMismatch,
        };
        if (reason is null)
        {
            return SniVerdict.NeedMore;
        }

        if (reason.Length == 0)
        {
            return SniVerdict.Pass;
        }

        judged = DecisionResult.Refuse(Decision.Block, 403, reason);
        return PolicyOf(decision).IsObserve ? SniVerdict.Pass : SniVerdict.Refuse;
    }

    public long Record(in ConnectionInfo connection, in RequestDecision decision, ReadOnlySpan<byte> method, ReadOnlySpan<byte> path, int status)
    {
        Count(decision);
        if (audit is null || (status == 407 && Suppress(_limiter, connection, decision.Host)))
        {
            return -1;
        }

        // Filled in place in the ring slot: no 1.4 KiB record built on the stack and copied in.
        ref var record = ref audit.Claim(out var seq);
        try
        {
            FillDecision(ref record, connection, status, DecisionNames.Name(decision.Result.Decision), decision.Result.Reason);
            // Format 2: false only when a refusal was let through (observe mode), judged by what this
            // request did, not by the policy current now (a reload may have changed the mode since).
            record.Enforced = decision.Result.IsAllow || !decision.Allowed;
            record.Identity = decision.Identity == AuditIdentity.None ? AuditIdentity.Unauthenticated : decision.Identity;
            Span<byte> dialed = stackalloc byte[64];
            if (decision.Dialed is { } ip && ip.TryFormat(dialed, out var written))
            {
                record.Set(AuditText.DialedIp, dialed[..written]);
            }

            record.Port = decision.Port;
            record.Set(AuditText.Agent, decision.Agent?.Id ?? decision.ClaimedAgent);
            record.Set(AuditText.Method, method);
            record.Set(AuditText.Host, decision.Host);
            record.Set(AuditText.Path, path);
            record.Set(AuditText.Policy, decision.Result.Policy);
            record.Set(AuditText.Rule, decision.Result.Rule);
            record.Set(AuditText.Credential, decision.Result.Credential?.Name);
        }
        finally
        {
            audit.Publish(seq);
        }

        return seq;
    }

    public long RecordRefusal(in ConnectionInfo connection, in Refusal refusal)
    {
        _metrics.Unauthenticated.Count(DecisionNames.TryParse(refusal.Decision, out var decision) ? decision : Decision.Deny, refusal.Reason);
        // Every refusal that reaches here came before any credential was checked: limited per source like a 407.
        if (audit is null || Suppress(_limiter, connection, null))
        {
            return -1;
        }

        ref var record = ref audit.Claim(out var seq);
        try
        {
            FillDecision(ref record, connection, refusal.Status, refusal.Decision, refusal.Reason);
        }
        finally
        {
            audit.Publish(seq);
        }

        return seq;
    }

    public ValueTask WaitForAuditRoomAsync() => audit?.WaitForRoomAsync() ?? default;

    public bool AuditAdmits() => audit is null || audit.Admit() != AuditAdmission.Refuse;

    /// <summary>
    /// Under commit-before-forward: false when the record is not durable (no record, writer faulted,
    /// deadline passed); never hangs. Batched: false when the request got no seq and the writer refuses
    /// (OnFailure=refuse), so nothing is forwarded that has no place in the chain.
    /// </summary>
    public ValueTask<bool> WaitDurableAsync(long auditSeq) =>
        audit is { CommitBeforeForward: true } ? audit.WaitDurableAsync(auditSeq)
        : ValueTask.FromResult(audit is null || auditSeq >= 0 || audit.ForwardOnFailure);

    public bool ChargeEgress(in RequestDecision decision, long bytes)
    {
        if (decision.Agent is not { EgressBytesPerDay: { } budget } agent)
        {
            return true;
        }

        return agent.Runtime.AddEgress(CompiledPolicy.Day(time.GetUtcNow()), bytes) <= budget || PolicyOf(decision).IsObserve;
    }

    public void Complete(in ConnectionInfo connection, in RequestDecision decision, in RequestTotals totals)
    {
        if (decision.HoldsTunnelSlot)
        {
            decision.Agent!.Runtime.CloseTunnel();
        }

        _metrics.AddBytes(totals.BytesUp, totals.BytesDown);
        // A close record when bytes could flow, and when the request failed after its decision record
        // (a failed durable wait, bad body framing): that failure is told here, not by a second
        // decision record.
        if (audit is null || !(totals.Established || totals.FailedAfterRecord))
        {
            return;
        }

        ref var record = ref audit.Claim(out var seq);
        try
        {
            record.Kind = AuditKind.Close;
            record.ConnectionId = connection.Id;
            record.Port = decision.Port;
            record.BytesUp = totals.BytesUp;
            record.BytesDown = totals.BytesDown;
            record.DurationMs = totals.DurationMs;
            record.Status = totals.Status;
            record.Set(AuditText.Agent, decision.Agent?.Id);
            SetAddress(ref record, connection.Remote?.Address);
            record.Set(AuditText.Host, decision.Host);
            record.Set(AuditText.Reason, totals.Reason);
        }
        finally
        {
            audit.Publish(seq);
        }
    }

    public string? JudgeDnsQuestion(string agentId, ReadOnlySpan<byte> name, ushort type, out bool enforced)
    {
        var policy = engine.Current;
        enforced = !policy.IsObserve;
        var agent = policy.Anonymous;
        if (agent is null && !policy.AgentsById.TryGetValue(agentId, out agent))
        {
            return ProxyReasons.DnsNameRefused; // a reload removed the guard's agent: nothing may be resolved for it
        }

        if (!CompiledPolicy.AllowsDnsType(agent, type))
        {
            return ProxyReasons.DnsTypeRefused;
        }

        return policy.CouldAllowName(agent, name, time.GetUtcNow()) ? null : ProxyReasons.DnsNameRefused;
    }

    public long RecordDnsRefusal(in ConnectionInfo connection, string? agentId, ReadOnlySpan<byte> name, ushort type, string reason, bool enforced)
    {
        var policy = engine.Current;
        var counters = agentId is not null && policy.AgentsById.TryGetValue(agentId, out var agent) ? _metrics.ForAgent(agent.Runtime.Index) : _metrics.Unauthenticated;
        counters.Count(Decision.Block, reason);
        if (audit is null)
        {
            return -1;
        }

        // Bounded per source like unauthenticated refusals (SPEC §10): a query costs the client nothing.
        var host = name.IsEmpty ? null : Encoding.ASCII.GetString(name);
        if (Suppress(_dnsLimiter, connection, host))
        {
            return -1;
        }

        ref var record = ref audit.Claim(out var seq);
        try
        {
            FillDecision(ref record, connection, 403, DecisionNames.Name(Decision.Block), reason);
            record.Enforced = enforced;
            record.Identity = AuditIdentity.Listener;
            record.Port = 53;
            record.Set(AuditText.Agent, agentId);
            record.Set(AuditText.Method, "DNS"u8);
            record.Set(AuditText.Host, name);
            record.Set(AuditText.Path, type == 0 ? null : DnsTypeNames.Name(type));
        }
        finally
        {
            audit.Publish(seq);
        }

        return seq;
    }

    /// <summary>
    /// Once per heartbeat: the counts of unauthenticated refusals from seconds that have ended become
    /// their <c>system</c> records (a source that stopped sending is recorded here, not at its next refusal).
    /// </summary>
    public void Tick()
    {
        var second = Second();
        foreach (var limiter in (ReadOnlySpan<UnauthenticatedLimiter?>)[_limiter, _dnsLimiter])
        {
            if (limiter is { HasPending: true })
            {
                WriteSuppressed(limiter, second);
            }
        }
    }

    /// <summary>At stop, after the proxy drained and before the stop record: every count still held is recorded.</summary>
    public void FlushSuppressed()
    {
        foreach (var limiter in (ReadOnlySpan<UnauthenticatedLimiter?>)[_limiter, _dnsLimiter])
        {
            if (limiter is { HasPending: true })
            {
                WriteSuppressed(limiter, long.MaxValue);
            }
        }
    }

    public bool NeedsRecheck()
    {
        var version = engine.Version;
        var minute = time.GetUtcNow().UtcTicks / TimeSpan.TicksPerMinute;
        // Both exchanges run (no short circuit) so each remembers what this beat saw.
        var sameVersion = version == Interlocked.Exchange(ref _seenVersion, version);
        var sameMinute = minute == Interlocked.Exchange(ref _seenMinute, minute);
        return !(sameVersion & sameMinute);
    }

    public string? Recheck(in RequestDecision decision, in GateRequest request)
    {
        var policy = engine.Current;
        if (policy.IsObserve || decision.Agent is not { } old)
        {
            return null;
        }

        if (!policy.AgentsById.TryGetValue(old.Id, out var agent))
        {
            return Reasons.PolicyRevoked;
        }

        var host = request.Host;
        var facts = new RequestFacts(host, request.Port, request.IsTunnel ? "CONNECT"u8 : request.Method, request.Path, request.UserAgent, null, request.IsTunnel);
        var verdict = request.HasPathParameters
            ? policy.Recheck(agent, facts with { PathWithoutParameters = request.PathWithoutParameters }, time.GetUtcNow())
            : policy.Recheck(agent, facts, time.GetUtcNow());
        return verdict switch
        {
            TunnelVerdict.PolicyRevoked => Reasons.PolicyRevoked,
            TunnelVerdict.WindowClosed => Reasons.WindowClosed,
            // A tunnel opened opaque that the policy now inspects would keep its requests out of the
            // path rules and require for as long as it stays open (and one opened inspected that no
            // longer is would keep applying rules the policy dropped): it is closed, and reopened the
            // way the policy now says.
            _ when decision.HoldsTunnelSlot && policy.Inspects(agent, host, decision.Port) != decision.Inspect => Reasons.PolicyRevoked,
            _ => null,
        };
    }

    /// <summary>The snapshot the request was decided under; the current one for a decision made without (a refusal before any policy step).</summary>
    private CompiledPolicy PolicyOf(in RequestDecision decision) => decision.Policy ?? engine.Current;

    private long Second() => time.GetUtcNow().ToUnixTimeSeconds();

    /// <summary>
    /// An unauthenticated refusal past Audit:UnauthenticatedPerSecond from its source: true when it is
    /// only counted (no record of its own, so no seq to give the client). A count this call closed is
    /// recorded here.
    /// </summary>
    private bool Suppress(UnauthenticatedLimiter? limiter, in ConnectionInfo connection, string? host)
    {
        if (limiter is null)
        {
            return false;
        }

        var admitted = limiter.TryAdmit(connection.Remote?.Address, Second(), host, out var flushed);
        if (flushed.Count > 0)
        {
            WriteSuppressed(limiter, flushed);
        }

        if (admitted)
        {
            return false;
        }

        if (ReferenceEquals(limiter, _limiter))
        {
            _metrics.CountSuppressed(); // the metric counts unauthenticated refusals; DNS ones count in the decisions
        }
        return true;
    }

    private void WriteSuppressed(UnauthenticatedLimiter limiter, long beforeSecond)
    {
        var drained = new List<SuppressedRefusals>();
        limiter.Drain(beforeSecond, drained);
        foreach (var s in drained)
        {
            WriteSuppressed(limiter, s);
        }
    }

    /// <summary>One chained system record for one source's counted refusals in one second.</summary>
    private void WriteSuppressed(UnauthenticatedLimiter limiter, in SuppressedRefusals suppressed)
    {
        var second = DateTimeOffset.FromUnixTimeSeconds(suppressed.Second).ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture);
        var dns = ReferenceEquals(limiter, _dnsLimiter);
        var what = dns ? "refused DNS questions" : "unauthenticated refusals";
        var detail = suppressed.Overflow
            ? $"{suppressed.Count} {what} in the second from {second} were counted, not recorded one by one (Audit:UnauthenticatedPerSecond={limiter.PerSecond}), from sources the limiter had no room for (first {suppressed.Source})"
            : $"{suppressed.Count} {what} in the second from {second} were counted, not recorded one by one (Audit:UnauthenticatedPerSecond={limiter.PerSecond})";
        ref var record = ref audit!.Claim(out var seq);
        try
        {
            record.Kind = AuditKind.System;
            record.Status = dns ? 403 : 407;
            record.Set(AuditText.Reason, dns ? DnsSuppressedReason : UnauthenticatedLimiter.Reason);
            record.Set(AuditText.Host, suppressed.FirstHost);
            record.Set(AuditText.Path, detail);
            if (!suppressed.Overflow)
            {
                SetAddress(ref record, suppressed.Source);
            }
        }
        finally
        {
            audit.Publish(seq);
        }
    }

    private void Count(in RequestDecision decision) =>
        (decision.Agent is { } agent ? _metrics.ForAgent(agent.Runtime.Index) : _metrics.Unauthenticated).Count(decision.Result.Decision, decision.Result.Reason);

    /// <summary>What every decision record says, the request's own or a refusal of the proxy's.</summary>
    private static void FillDecision(ref AuditRecord record, in ConnectionInfo connection, int status, string decision, string reason)
    {
        record.Kind = AuditKind.Decision;
        record.ConnectionId = connection.Id;
        record.Status = status;
        SetAddress(ref record, connection.Remote?.Address);
        record.Set(AuditText.Decision, decision);
        record.Set(AuditText.Reason, reason);
    }

    private static void SetAddress(ref AuditRecord record, IPAddress? address)
    {
        Span<byte> text = stackalloc byte[64];
        if (address is not null && address.TryFormat(text, out var n))
        {
            record.Set(AuditText.SourceIp, text[..n]);
        }
    }
}
