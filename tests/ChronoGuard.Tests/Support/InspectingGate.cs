using System.Buffers;
using System.Net;
using System.Text;
using ChronoGuard.Http;
using ChronoGuard.Policy;
using ChronoGuard.Proxy;

namespace ChronoGuard.Tests.Support;

/// <summary>
/// A gate for the front end's tests, independent of the policy: passes everything to an inner gate,
/// asks to inspect allowed tunnels to the named hosts, and refuses inner requests whose path starts
/// with <see cref="DenyPathPrefix"/> (403 BLOCK rule_deny), as a path rule would.
/// </summary>
internal sealed class InspectingGate(IRequestGate inner, params string[] inspect) : IRequestGate
{
    public string? DenyPathPrefix { get; init; }

    /// <summary>The front end each decided request came by, in order.</summary>
    public System.Collections.Concurrent.ConcurrentQueue<FrontEnd> FrontEnds { get; } = new();

    public RequestDecision Decide(in ConnectionInfo connection, in GateRequest request)
    {
        var decision = inner.Decide(connection, request);
        FrontEnds.Enqueue(request.FrontEnd);
        var host = Encoding.ASCII.GetString(request.Host);
        if (request.IsTunnel && decision.Allowed && Array.Exists(inspect, h => string.Equals(h, host, StringComparison.OrdinalIgnoreCase)))
        {
            decision.Inspect = true;
        }

        if (request.FrontEnd == FrontEnd.Inspected && DenyPathPrefix is { } prefix && request.Path.StartsWith(Encoding.ASCII.GetBytes(prefix)))
        {
            decision.Result = DecisionResult.Refuse(Decision.Block, 403, Reasons.RuleDeny);
            decision.Allowed = false;
        }

        return decision;
    }

    public AuthOutcome CheckCredentials(in AgentCredentials credentials, string? listenerAgent) => inner.CheckCredentials(credentials, listenerAgent);

    public RequestDecision Reconsider(in ConnectionInfo connection, in RequestDecision held, in GateRequest request) => inner.Reconsider(connection, held, request);

    public bool RequiresCredentials => inner.RequiresCredentials;

    public bool AcceptAddress(in RequestDecision decision, IPAddress address, out DecisionResult judged) => inner.AcceptAddress(decision, address, out judged);

    public bool RequiresSniCheck(in RequestDecision decision) => inner.RequiresSniCheck(decision);

    public SniVerdict CheckClientHello(in RequestDecision decision, in ReadOnlySequence<byte> firstBytes, ClientHelloEnd end, out DecisionResult judged) =>
        inner.CheckClientHello(decision, firstBytes, end, out judged);

    public long Record(in ConnectionInfo connection, in RequestDecision decision, ReadOnlySpan<byte> method, ReadOnlySpan<byte> path, int status) =>
        inner.Record(connection, decision, method, path, status);

    public bool AuditAdmits() => inner.AuditAdmits();

    public ValueTask WaitForAuditRoomAsync() => inner.WaitForAuditRoomAsync();

    public ValueTask<bool> WaitDurableAsync(long auditSeq) => inner.WaitDurableAsync(auditSeq);

    public bool ChargeEgress(in RequestDecision decision, long bytes) => inner.ChargeEgress(decision, bytes);

    public void Complete(in ConnectionInfo connection, in RequestDecision decision, in RequestTotals totals) => inner.Complete(connection, decision, totals);

    public long RecordRefusal(in ConnectionInfo connection, in Refusal refusal) => inner.RecordRefusal(connection, refusal);

    public void UpstreamConnected(long elapsedTicks) => inner.UpstreamConnected(elapsedTicks);

    public void Tick() => inner.Tick();

    public bool NeedsRecheck() => inner.NeedsRecheck();

    public string? Recheck(in RequestDecision decision, in GateRequest request) => inner.Recheck(decision, request);
}
