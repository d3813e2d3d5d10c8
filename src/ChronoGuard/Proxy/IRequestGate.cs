using System.Buffers;
using System.Net;
using ChronoGuard.Http;
using ChronoGuard.Policy;

namespace ChronoGuard.Proxy;

/// <summary>
/// Where a request meets policy, audit and analytics. Front ends (HTTP forwarding and CONNECT, SOCKS5;
/// inspected TLS and transparent capture next) describe a request as a protocol-neutral
/// <see cref="GateRequest"/> and call the gate only through <see cref="RequestScope"/>, which calls
/// each method at its one place: decide, judge each address before it is dialed, judge the
/// ClientHello before anything is dialed, record once, charge egress, complete once. Every method
/// takes values and returns values; none sees the connection. Every method after <see cref="Decide"/>
/// reads the policy snapshot the decision was made under (<see cref="RequestDecision.Policy"/>).
/// </summary>
internal interface IRequestGate
{
    /// <summary>Authenticates and decides; may take a tunnel slot (released by <see cref="Complete"/>).</summary>
    RequestDecision Decide(in ConnectionInfo connection, in GateRequest request);

    /// <summary>
    /// A held request's approval came (SPEC §9): decides it again for the agent and identity it was
    /// held for, under the policy current now (the grant that approved it in force); may take a tunnel
    /// slot like <see cref="Decide"/>. No default: a gate that wraps another must pass it on, or an
    /// approved request would stay refused.
    /// </summary>
    RequestDecision Reconsider(in ConnectionInfo connection, in RequestDecision held, in GateRequest request);

    /// <summary>
    /// Checks credentials offered before any request (a SOCKS5 login, RFC 1929), by the same rules as
    /// <see cref="Decide"/>: <see cref="AuthOutcome.Invalid"/> is a failed login. Decide checks them again.
    /// </summary>
    AuthOutcome CheckCredentials(in AgentCredentials credentials, string? listenerAgent);

    /// <summary>Whether a client must identify itself (false when no policy is loaded: every client is the built-in anonymous agent).</summary>
    bool RequiresCredentials { get; }

    /// <summary>The network guard on an address about to be dialed: false means do not dial it.
    /// <paramref name="judged"/> is the refusal to audit when the guard objects (also in observe mode, where this returns true).</summary>
    bool AcceptAddress(in RequestDecision decision, IPAddress address, out DecisionResult judged);

    /// <summary>Whether the first client bytes of this tunnel must be a ClientHello naming its host.</summary>
    bool RequiresSniCheck(in RequestDecision decision);

    /// <summary>Judges the reassembled ClientHello (or its absence) before anything is dialed.</summary>
    SniVerdict CheckClientHello(in RequestDecision decision, in ReadOnlySequence<byte> firstBytes, ClientHelloEnd end, out DecisionResult judged);

    /// <summary>Completes when the audit ring has room for a record (at once, allocation-free, unless it is full):
    /// async front ends await it before a record is written, so back-pressure parks them instead of spinning a thread.</summary>
    ValueTask WaitForAuditRoomAsync() => default;

    /// <summary>Writes the request's one decision record with its final status; returns its audit seq (-1 without audit).</summary>
    long Record(in ConnectionInfo connection, in RequestDecision decision, ReadOnlySpan<byte> method, ReadOnlySpan<byte> path, int status);

    /// <summary>Whether the audit takes a request's record now: false while a faulted writer refuses
    /// (commit-before-forward, or batched with <c>Audit:OnFailure=refuse</c>).</summary>
    bool AuditAdmits();

    /// <summary>Completes when the record is durable (commit-before-forward), at once otherwise; false when it never will be.</summary>
    ValueTask<bool> WaitDurableAsync(long auditSeq);

    /// <summary>The one egress account: bytes sent upstream; false once the agent's budget is spent.</summary>
    bool ChargeEgress(in RequestDecision decision, long bytes);

    /// <summary>The request is over: gives back the tunnel slot, counts bytes, writes the close record when bytes could
    /// flow or when the request failed after its decision record (<see cref="RequestTotals.FailedAfterRecord"/>).</summary>
    void Complete(in ConnectionInfo connection, in RequestDecision decision, in RequestTotals totals);

    /// <summary>Audits a refusal the proxy made itself before any request was decided (malformed input, header timeout, capacity); returns its seq.</summary>
    long RecordRefusal(in ConnectionInfo connection, in Refusal refusal);

    /// <summary>An upstream connection succeeded after <paramref name="elapsedTicks"/> (Stopwatch ticks).</summary>
    void UpstreamConnected(long elapsedTicks);

    /// <summary>
    /// The DNS guard's question (SPEC §10): null when <paramref name="agentId"/>'s policies could allow
    /// <paramref name="name"/> and answer <paramref name="type"/>, else the refusal's reason (then
    /// <paramref name="enforced"/> is false in observe mode: recorded, but answered). Allocation-free.
    /// Without a policy every question is answered.
    /// </summary>
    string? JudgeDnsQuestion(string agentId, ReadOnlySpan<byte> name, ushort type, out bool enforced)
    {
        enforced = false;
        return null;
    }

    /// <summary>Records a refused DNS question (<c>method: DNS</c>, <c>BLOCK</c>), bounded per source like
    /// unauthenticated refusals; returns its seq (-1 when only counted or without audit).</summary>
    long RecordDnsRefusal(in ConnectionInfo connection, string? agentId, ReadOnlySpan<byte> name, ushort type, string reason, bool enforced) => -1;

    /// <summary>Once per heartbeat, before <see cref="NeedsRecheck"/>: periodic bookkeeping (counts of suppressed refusals become records).</summary>
    void Tick();

    /// <summary>Once per heartbeat: whether open tunnels must be judged again (new policy, new minute).</summary>
    bool NeedsRecheck();

    /// <summary>Whether an open tunnel may go on; the close reason when not.</summary>
    /// <param name="request">The request as described again by its scope: for a forwarded or inspected
    /// request its method, path and user agent as well, so path rules are judged again too.</param>
    string? Recheck(in RequestDecision decision, in GateRequest request);
}
