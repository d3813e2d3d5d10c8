using System.Collections.Concurrent;
using System.Net;
using ChronoGuard.Http;
using ChronoGuard.Proxy;

namespace ChronoGuard.Tests.Support;

/// <summary>A gate that allows everything and records what the proxy reports to it, with sequence numbers.</summary>
internal sealed class RecordingGate : RequestGate
{
    private long _seq = -1;

    public ConcurrentQueue<(long Seq, int Status, string Decision, string Reason)> Records { get; } = new();

    public ConcurrentQueue<(long BytesUp, long BytesDown, string Reason)> Closes { get; } = new();

    public TaskCompletionSource FirstClose { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Func<IPAddress, bool> AddressFilter { get; set; } = _ => true;

    public override bool AcceptAddress(ProxyConnection connection, ref Verdict verdict, IPAddress address)
    {
        if (AddressFilter(address))
        {
            return true;
        }

        verdict.Refusal = new Refusal(403, "BLOCK", "private_destination");
        return false;
    }

    public override void Record(ProxyConnection connection, HttpHead head, ref Verdict verdict, int status)
    {
        verdict.AuditSeq = Interlocked.Increment(ref _seq);
        Records.Enqueue((verdict.AuditSeq, status, verdict.Allowed && status == 200 ? "ALLOW" : verdict.Refusal.Decision, verdict.Allowed && status == 200 ? "allowed" : verdict.Refusal.Reason));
    }

    public override void OnProtocolRefusal(IPEndPoint? source, long connectionId, ref Refusal refusal)
    {
        refusal = refusal with { AuditSeq = Interlocked.Increment(ref _seq) };
        Records.Enqueue((refusal.AuditSeq, refusal.Status, refusal.Decision, refusal.Reason));
    }

    public override void OnClosed(ProxyConnection connection, in Verdict verdict, long bytesUp, long bytesDown, long durationMs, string reason)
    {
        Closes.Enqueue((bytesUp, bytesDown, reason));
        FirstClose.TrySetResult();
    }
}
