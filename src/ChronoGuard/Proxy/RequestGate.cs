using System.Net;
using ChronoGuard.Http;

namespace ChronoGuard.Proxy;

/// <summary>
/// Where a request meets policy, audit and analytics. The proxy calls it at fixed points: after the
/// head is parsed (<see cref="Decide"/>), for each resolved address before dialing
/// (<see cref="AcceptAddress"/>), once per request when the outcome is final (<see cref="Record"/>),
/// for refusals of its own making, and at close.
/// </summary>
internal class RequestGate
{
    /// <summary>No policy, no audit: everything is allowed. Used before a policy engine is wired in.</summary>
    public static readonly RequestGate AllowAll = new();

    /// <summary>Fills <paramref name="verdict"/> for the parsed head; nothing is recorded yet.</summary>
    public virtual void Decide(ProxyConnection connection, HttpHead head, ref Verdict verdict)
    {
        verdict.Allowed = true;
    }

    /// <summary>The network guard on an address that is about to be dialed; false sets the refusal.</summary>
    public virtual bool AcceptAddress(ProxyConnection connection, ref Verdict verdict, IPAddress address) => true;

    /// <summary>Records the request's one decision record with its final status; sets the audit sequence.</summary>
    public virtual void Record(ProxyConnection connection, HttpHead head, ref Verdict verdict, int status)
    {
    }

    /// <summary>Audits a refusal the proxy produced itself (malformed input, capacity).</summary>
    public virtual void OnProtocolRefusal(IPEndPoint? source, long connectionId, ref Refusal refusal)
    {
    }

    /// <summary>Completes when the decision record is durable (commit-before-forward), at once otherwise.</summary>
    public virtual ValueTask WaitDurableAsync(long auditSeq) => default;

    /// <summary>
    /// Called once per heartbeat: true when open tunnels must be judged again (a new policy was
    /// published, or a minute boundary passed so a time window may have closed).
    /// </summary>
    public virtual bool NeedsRecheck() => false;

    /// <summary>Whether an open tunnel may go on (policy reloads, time windows); the close reason when not.</summary>
    public virtual string? Recheck(ProxyConnection connection, in Verdict verdict) => null;

    /// <summary>Whether the tunnel's first client bytes must be a TLS ClientHello naming the CONNECT host.</summary>
    public virtual bool RequiresSniCheck(in Verdict verdict) => false;

    /// <summary>
    /// Judges the client's first bytes in a tunnel: more needed, pass, or refuse (the gate records the
    /// refusal, e.g. BLOCK sni_mismatch, and the tunnel closes before any client byte goes upstream).
    /// </summary>
    public virtual SniVerdict CheckClientHello(ProxyConnection connection, ref Verdict verdict, in System.Buffers.ReadOnlySequence<byte> firstBytes, bool complete) => SniVerdict.Pass;

    /// <summary>Bytes sent upstream; false when the agent's egress budget is spent and the tunnel must close.</summary>
    /// <summary>An upstream connection succeeded after <paramref name="elapsedTicks"/> (resolve + connect).</summary>
    public virtual void OnUpstreamConnected(long elapsedTicks)
    {
    }

    public virtual bool OnEgress(in Verdict verdict, long bytes) => true;

    public virtual void OnClosed(ProxyConnection connection, in Verdict verdict, long bytesUp, long bytesDown, long durationMs, string reason)
    {
    }
}
