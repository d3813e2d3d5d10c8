using System.Buffers;
using System.Net;
using ChronoGuard.Http;
using ChronoGuard.Policy;

namespace ChronoGuard.Proxy;

/// <summary>No policy, no audit: every request is allowed. For a proxy run without a policy engine (tests, tools).</summary>
internal sealed class AllowAllGate : IRequestGate
{
    public static readonly AllowAllGate Instance = new();

    public RequestDecision Decide(in ConnectionInfo connection, in GateRequest request) =>
        new() { Allowed = true, Result = DecisionResult.Allow(Reasons.Allowed) };

    public AuthOutcome CheckCredentials(in AgentCredentials credentials, string? listenerAgent) => AuthOutcome.Ok;

    /// <summary>Never reached: this gate allows everything, so nothing is held.</summary>
    public RequestDecision Reconsider(in ConnectionInfo connection, in RequestDecision held, in GateRequest request) => held;

    public bool RequiresCredentials => false;

    public bool AcceptAddress(in RequestDecision decision, IPAddress address, out DecisionResult judged)
    {
        judged = DecisionResult.Allow(Reasons.Allowed);
        return true;
    }

    public bool RequiresSniCheck(in RequestDecision decision) => false;

    public SniVerdict CheckClientHello(in RequestDecision decision, in ReadOnlySequence<byte> firstBytes, ClientHelloEnd end, out DecisionResult judged)
    {
        judged = decision.Result;
        return SniVerdict.Pass;
    }

    public long Record(in ConnectionInfo connection, in RequestDecision decision, ReadOnlySpan<byte> method, ReadOnlySpan<byte> path, int status) => -1;

    public bool AuditAdmits() => true;

    public ValueTask<bool> WaitDurableAsync(long auditSeq) => ValueTask.FromResult(true);

    public bool ChargeEgress(in RequestDecision decision, long bytes) => true;

    public void Complete(in ConnectionInfo connection, in RequestDecision decision, in RequestTotals totals)
    {
    }

    public long RecordRefusal(in ConnectionInfo connection, in Refusal refusal) => -1;

    public void UpstreamConnected(long elapsedTicks)
    {
    }

    public void Tick()
    {
    }

    public bool NeedsRecheck() => false;

    public string? Recheck(in RequestDecision decision, in GateRequest request) => null;
}
