using System.Net;
using ChronoGuard.Audit;
using ChronoGuard.Policy;

namespace ChronoGuard.Proxy;

/// <summary>
/// The gate's answer for one request, as a value: what was decided, whether bytes may flow, what the
/// request holds. Only <see cref="RequestScope"/> changes it after <see cref="IRequestGate.Decide"/>.
/// </summary>
internal struct RequestDecision
{
    /// <summary>Whether bytes may flow (true in observe mode even when <see cref="Result"/> is a refusal).</summary>
    public bool Allowed;

    /// <summary>The decision as audited; an upstream failure keeps the decision and changes status and reason.</summary>
    public DecisionResult Result;

    /// <summary>The authenticated agent, or for <c>bad_credentials</c> none (see <see cref="ClaimedAgent"/>).</summary>
    public AgentPlan? Agent;

    /// <summary>The agent id a request with wrong credentials claimed; recorded as unauthenticated.</summary>
    public string? ClaimedAgent;

    /// <summary>How the agent was identified (credentials, the listener, or not at all), for the record.</summary>
    public AuditIdentity Identity;

    /// <summary>
    /// The policy snapshot this request was decided under. Every later step of the request (guard,
    /// SNI check, egress, record) reads this one, so a reload in between cannot give one request two
    /// policies; only the heartbeat's recheck reads the current policy, on purpose.
    /// </summary>
    public CompiledPolicy? Policy;

    /// <summary>A tunnel slot was taken in <see cref="IRequestGate.Decide"/>; the scope's exit gives it back.</summary>
    public bool HoldsTunnelSlot;

    public string Host;
    public int Port;

    /// <summary>The address dialed, or when the guard refused every resolved address, the first of them.</summary>
    public IPAddress? Dialed;

    public long AuditSeq;

    /// <summary>
    /// An allowed tunnel whose host matches an <c>inspect</c> pattern of the agent's policies (SPEC §7):
    /// TLS is terminated and every inner request is decided on its own.
    /// </summary>
    public bool Inspect;

    /// <summary>The credential to inject into this request (inspected requests only, SPEC §7), or null.</summary>
    public CompiledCredential? Credential;
}
