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

    public string Host;
    public int Port;
    public System.Net.IPAddress? Dialed;
}
