using System.Buffers;
using System.Diagnostics;
using System.Net;
using System.Text;
using ChronoGuard.Audit;
using ChronoGuard.Http;
using ChronoGuard.Policy;
using ChronoGuard.Stats;

namespace ChronoGuard.Proxy;

/// <summary>
/// The gate with a policy behind it: authenticates, decides in SPEC order, guards resolved addresses,
/// checks the ClientHello, accounts tunnels and egress, and closes tunnels the policy no longer allows.
/// In observe mode every decision is computed and reported, but bytes always flow.
/// </summary>
internal class PolicyGate(PolicyEngine engine, TimeProvider time, AuditWriter? audit = null, ProxyMetrics? metrics = null) : RequestGate
{
    private readonly ProxyMetrics _metrics = metrics ?? new ProxyMetrics();
    private long _seenVersion = -1;
    private long _seenMinute;

    public PolicyEngine Engine => engine;

    public ProxyMetrics Metrics => _metrics;

    public override void Decide(ProxyConnection connection, HttpHead head, ref Verdict verdict)
    {
        var started = Stopwatch.GetTimestamp();
        var now = time.GetUtcNow();
        var policy = engine.Current;
        var auth = policy.Authenticate(head.Span(head.ProxyAuthorization), out var agent);
        verdict.Agent = agent;
        if (auth != AuthOutcome.Ok)
        {
            verdict.Result = auth == AuthOutcome.Suspended
                ? DecisionResult.Refuse(Decision.Deny, 403, Reasons.Suspended)
                : DecisionResult.Refuse(Decision.Deny, 407, auth == AuthOutcome.Missing ? Reasons.Unauthenticated : Reasons.BadCredentials);
        }
        else
        {
            var facts = new RequestFacts(
                head.Span(head.TargetHost),
                head.TargetPort,
                head.Span(head.Method),
                head.IsConnect ? default : head.Span(head.TargetPath),
                head.Span(head.UserAgent),
                connection.Remote?.Address,
                head.IsConnect);
            verdict.Result = policy.Decide(agent!, facts, now, started);
            if (verdict.Result.IsAllow && head.IsConnect)
            {
                if (agent!.Runtime.TryOpenTunnel(policy.MaxTunnelsPerAgent))
                {
                    verdict.HoldsTunnelSlot = true;
                }
                else
                {
                    verdict.Result = DecisionResult.Refuse(Decision.RateLimited, 429, Reasons.TunnelLimit, retryAfter: 1);
                }
            }
        }

        verdict.Allowed = verdict.Result.IsAllow || policy.IsObserve;
        verdict.Refusal = ToRefusal(verdict.Result);
        _metrics.DecisionDuration.Observe(Stopwatch.GetTimestamp() - started);
        _metrics.RecordDomain(head.Span(head.TargetHost), agent?.Runtime.Index ?? 0, now.UtcTicks / TimeSpan.TicksPerMinute);
    }

    public override void OnUpstreamConnected(long elapsedTicks) => _metrics.UpstreamConnect.Observe(elapsedTicks);

    private void Count(in Verdict verdict) =>
        ((verdict.Agent as AgentPlan)?.Runtime.Metrics ?? _metrics.Unauthenticated).Count(verdict.Result.Decision);

    public override bool AcceptAddress(ProxyConnection connection, ref Verdict verdict, IPAddress address)
    {
        var policy = engine.Current;
        var check = policy.CheckResolved(address);
        if (check.IsAllow)
        {
            return true;
        }

        verdict.Result = check;
        verdict.Refusal = ToRefusal(check);
        return policy.IsObserve;
    }

    public override bool RequiresSniCheck(in Verdict verdict) =>
        engine.Current.Network.RequireSniMatch && !IPAddress.TryParse(verdict.Host, out _);

    public override SniVerdict CheckClientHello(ProxyConnection connection, ref Verdict verdict, in ReadOnlySequence<byte> firstBytes, bool complete)
    {
        Span<byte> sni = stackalloc byte[256];
        var result = TlsClientHello.TryGetSni(firstBytes, sni, out var length);
        string? reason = result switch
        {
            TlsClientHello.Result.NeedMore => complete ? Reasons.NotTls : null,
            TlsClientHello.Result.NotTls => verdict.Port == 443 ? Reasons.NotTls : string.Empty,
            TlsClientHello.Result.NoSni => Reasons.SniMissing,
            _ => Ascii.EqualsIgnoreCase(sni[..length], verdict.Host) ? string.Empty : Reasons.SniMismatch,
        };
        if (reason is null)
        {
            return SniVerdict.NeedMore;
        }

        if (reason.Length == 0)
        {
            return SniVerdict.Pass;
        }

        verdict.Result = DecisionResult.Refuse(Decision.Block, 403, reason);
        verdict.Refusal = ToRefusal(verdict.Result);
        OnSniRefused(connection, ref verdict);
        return engine.Current.IsObserve ? SniVerdict.Pass : SniVerdict.Refuse;
    }

    /// <summary>The SNI refusal is its own decision record (the CONNECT itself was already recorded as allowed).</summary>
    protected virtual void OnSniRefused(ProxyConnection connection, ref Verdict verdict)
    {
        Count(verdict);
        if (audit is null)
        {
            return;
        }

        ref var record = ref audit.Claim(out var seq);
        try
        {
            FillDecision(ref record, connection, "CONNECT"u8, default, verdict, verdict.Result.Status);
        }
        finally
        {
            audit.Publish(seq);
        }

        verdict.AuditSeq = seq;
    }

    public override void Record(ProxyConnection connection, HttpHead head, ref Verdict verdict, int status)
    {
        Count(verdict);
        if (audit is null)
        {
            return;
        }

        if (!verdict.Allowed || status != 200)
        {
            // The refusal the client sees (upstream failures included) is what the record says.
            verdict.Result.Status = status;
            if (verdict.Result.IsAllow && status != 200)
            {
                verdict.Result.Reason = verdict.Refusal.Reason;
            }
        }

        // Filled in place in the ring slot: no 1.4 KiB record built on the stack and copied in.
        ref var record = ref audit.Claim(out var seq);
        try
        {
            FillDecision(ref record, connection, head.Span(head.Method), head.IsConnect ? default : head.Span(head.TargetPath), verdict, status);
        }
        finally
        {
            audit.Publish(seq);
        }

        verdict.AuditSeq = seq;
    }

    public override void OnProtocolRefusal(IPEndPoint? source, long connectionId, ref Refusal refusal)
    {
        _metrics.Unauthenticated.Count(DecisionNames.TryParse(refusal.Decision, out var decision) ? decision : Decision.Deny);
        if (audit is null)
        {
            return;
        }

        ref var record = ref audit.Claim(out var seq);
        try
        {
            record.Kind = AuditKind.Decision;
            record.ConnectionId = connectionId;
            record.Status = refusal.Status;
            SetAddress(ref record, source?.Address);
            record.Set(AuditText.Decision, refusal.Decision);
            record.Set(AuditText.Reason, refusal.Reason);
        }
        finally
        {
            audit.Publish(seq);
        }

        refusal = refusal with { AuditSeq = seq };
    }

    public override ValueTask WaitDurableAsync(long auditSeq) =>
        audit is { CommitBeforeForward: true } ? audit.WaitDurableAsync(auditSeq) : default;

    private void FillDecision(ref AuditRecord record, ProxyConnection connection, ReadOnlySpan<byte> method, ReadOnlySpan<byte> path, in Verdict verdict, int status)
    {
        var policy = engine.Current;
        record.Kind = AuditKind.Decision;
        // Format 2: observe mode lets every refusal through; the built-in anonymous agent proved nothing.
        record.Enforced = verdict.Result.IsAllow || !policy.IsObserve;
        record.Identity = verdict.Agent is AgentPlan plan && !ReferenceEquals(plan, policy.Anonymous) ? AuditIdentity.Credential : AuditIdentity.Unauthenticated;
        Span<byte> dialed = stackalloc byte[64];
        if (verdict.Dialed is { } ip && ip.TryFormat(dialed, out var written))
        {
            record.Set(AuditText.DialedIp, dialed[..written]);
        }

        record.ConnectionId = connection.Id;
        record.Port = verdict.Port;
        record.Status = status;
        record.Set(AuditText.Agent, (verdict.Agent as AgentPlan)?.Id);
        SetAddress(ref record, connection.Remote?.Address);
        record.Set(AuditText.Method, method);
        record.Set(AuditText.Host, verdict.Host);
        record.Set(AuditText.Path, path);
        record.Set(AuditText.Decision, DecisionNames.Name(verdict.Result.Decision));
        record.Set(AuditText.Reason, verdict.Result.Reason);
        record.Set(AuditText.Policy, verdict.Result.Policy);
        record.Set(AuditText.Rule, verdict.Result.Rule);
    }

    private static void SetAddress(ref AuditRecord record, IPAddress? address)
    {
        Span<byte> text = stackalloc byte[64];
        if (address is not null && address.TryFormat(text, out var n))
        {
            record.Set(AuditText.SourceIp, text[..n]);
        }
    }

    public override bool NeedsRecheck()
    {
        var version = engine.Version;
        var minute = time.GetUtcNow().UtcTicks / TimeSpan.TicksPerMinute;
        if (version == Interlocked.Exchange(ref _seenVersion, version) && minute == Interlocked.Exchange(ref _seenMinute, minute))
        {
            return false;
        }

        return true;
    }

    public override string? Recheck(ProxyConnection connection, in Verdict verdict)
    {
        var policy = engine.Current;
        if (policy.IsObserve || verdict.Agent is not AgentPlan old)
        {
            return null;
        }

        if (!policy.AgentsById.TryGetValue(old.Id, out var agent))
        {
            return Reasons.PolicyRevoked;
        }

        return policy.Recheck(agent, Encoding.ASCII.GetBytes(verdict.Host), verdict.Port, time.GetUtcNow()) switch
        {
            TunnelVerdict.PolicyRevoked => Reasons.PolicyRevoked,
            TunnelVerdict.WindowClosed => Reasons.WindowClosed,
            _ => null,
        };
    }

    public override bool OnEgress(in Verdict verdict, long bytes)
    {
        if (verdict.Agent is not AgentPlan agent || agent.EgressBytesPerDay is not { } budget)
        {
            return true;
        }

        return agent.Runtime.AddEgress(CompiledPolicy.Day(time.GetUtcNow()), bytes) <= budget || engine.Current.IsObserve;
    }

    public override void OnClosed(ProxyConnection connection, in Verdict verdict, long bytesUp, long bytesDown, long durationMs, string reason)
    {
        if (verdict.HoldsTunnelSlot && verdict.Agent is AgentPlan agent)
        {
            agent.Runtime.CloseTunnel();
        }

        _metrics.AddBytes(bytesUp, bytesDown);

        if (audit is null)
        {
            return;
        }

        ref var record = ref audit.Claim(out var seq);
        try
        {
            record.Kind = AuditKind.Close;
            record.ConnectionId = connection.Id;
            record.Port = verdict.Port;
            record.BytesUp = bytesUp;
            record.BytesDown = bytesDown;
            record.DurationMs = durationMs;
            record.Set(AuditText.Agent, (verdict.Agent as AgentPlan)?.Id);
            SetAddress(ref record, connection.Remote?.Address);
            record.Set(AuditText.Host, verdict.Host);
            record.Set(AuditText.Reason, reason);
        }
        finally
        {
            audit.Publish(seq);
        }
    }

    internal static Refusal ToRefusal(in DecisionResult r) => new(r.Status, DecisionNames.Name(r.Decision), r.Reason)
    {
        RetryAfterSeconds = r.RetryAfterSeconds,
        RetryAt = r.RetryAt,
        ChallengeBasic = r.Status == 407,
    };
}
