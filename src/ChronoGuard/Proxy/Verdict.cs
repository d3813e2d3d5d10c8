using ChronoGuard.Http;

namespace ChronoGuard.Proxy;

/// <summary>What the gate decided for one request, carried through connect, forward and close.</summary>
internal struct Verdict
{
    /// <summary>Whether bytes may flow (true in observe mode even when the decision is a refusal).</summary>
    public bool Allowed;

    /// <summary>The response to send when not allowed; its decision and reason also go to the audit.</summary>
    public Refusal Refusal;

    public long AuditSeq;

    /// <summary>Opaque per-request state of the gate (the authenticated agent).</summary>
    public object? Agent;

    /// <summary>The decision as audited (in observe mode it may be a refusal while bytes still flow).</summary>
    public ChronoGuard.Policy.DecisionResult Result;

    /// <summary>A tunnel slot was taken for the agent and must be given back at close.</summary>
    public bool HoldsTunnelSlot;

    public string Host;
    public int Port;
    public System.Net.IPAddress? Dialed;
}
