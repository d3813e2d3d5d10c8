using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using ChronoGuard.Http;
using ChronoGuard.Policy;
using ChronoGuard.Proxy;

namespace ChronoGuard.Tests.Support;

/// <summary>
/// A gate that passes every call to an inner gate (allow-all by default, or a real <see cref="PolicyGate"/>)
/// and records what the proxy reports to it, with sequence numbers of its own when the inner gate has no audit.
/// </summary>
internal sealed class RecordingGate(IRequestGate? inner = null) : IRequestGate
{
    private readonly IRequestGate _inner = inner ?? AllowAllGate.Instance;
    private long _seq = -1;

    public ConcurrentQueue<(long Seq, int Status, string Decision, string Reason)> Records { get; } = new();

    /// <summary>Per decision record: the authenticated agent, or the id a wrong credential claimed.</summary>
    public ConcurrentQueue<(string? Agent, string? Claimed)> Agents { get; } = new();

    /// <summary>Per decision record: the credential it injects (SPEC §7), or null.</summary>
    public ConcurrentQueue<string?> CredentialNames { get; } = new();

    /// <summary>Per decision record: the method and path it names ("CONNECT", "" for a tunnel).</summary>
    public ConcurrentQueue<(string Method, string Path)> Requests { get; } = new();

    /// <summary>Per decision record: how the agent was identified.</summary>
    public ConcurrentQueue<ChronoGuard.Audit.AuditIdentity> Identities { get; } = new();

    /// <summary>Each decision record's host, port and dialed address ("" when none).</summary>
    public ConcurrentQueue<(string Host, int Port, string Dialed)> Destinations { get; } = new();

    public ConcurrentQueue<(string Host, long BytesUp, long BytesDown, string Reason, bool Established, int Status)> Closes { get; } = new();

    private readonly ConcurrentQueue<(int Count, TaskCompletionSource Done)> _closeWaiters = new();

    public TaskCompletionSource FirstClose { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Requests decided whose scope has not exited yet: what they hold is not given back.</summary>
    public int Open => (int)(Interlocked.Read(ref _decided) - Interlocked.Read(ref _completed));

    private long _decided;
    private long _completed;

    public Func<IPAddress, bool> AddressFilter { get; set; } = _ => true;

    public RequestDecision Decide(in ConnectionInfo connection, in GateRequest request)
    {
        Interlocked.Increment(ref _decided);
        return _inner.Decide(connection, request);
    }

    public AuthOutcome CheckCredentials(in AgentCredentials credentials, string? listenerAgent) => _inner.CheckCredentials(credentials, listenerAgent);

    public RequestDecision Reconsider(in ConnectionInfo connection, in RequestDecision held, in GateRequest request) => _inner.Reconsider(connection, held, request);

    public bool RequiresCredentials => _inner.RequiresCredentials;

    public bool AcceptAddress(in RequestDecision decision, IPAddress address, out DecisionResult judged)
    {
        if (!AddressFilter(address))
        {
            judged = DecisionResult.Refuse(ChronoGuard.Policy.Decision.Block, 403, Reasons.PrivateDestination);
            return false;
        }

        return _inner.AcceptAddress(decision, address, out judged);
    }

    public bool RequiresSniCheck(in RequestDecision decision) => _inner.RequiresSniCheck(decision);

    public SniVerdict CheckClientHello(in RequestDecision decision, in ReadOnlySequence<byte> firstBytes, ClientHelloEnd end, out DecisionResult judged) =>
        _inner.CheckClientHello(decision, firstBytes, end, out judged);

    /// <summary>Runs before each decision record is handed to the inner gate (a fault injected between decision and record).</summary>
    public Action? BeforeRecord { get; set; }

    public long Record(in ConnectionInfo connection, in RequestDecision decision, ReadOnlySpan<byte> method, ReadOnlySpan<byte> path, int status)
    {
        BeforeRecord?.Invoke();
        var seq = _inner.Record(connection, decision, method, path, status);
        if (seq < 0)
        {
            seq = Interlocked.Increment(ref _seq);
        }

        Records.Enqueue((seq, status, DecisionNames.Name(decision.Result.Decision), decision.Result.Reason));
        Agents.Enqueue((decision.Agent?.Id, decision.ClaimedAgent));
        Requests.Enqueue((System.Text.Encoding.ASCII.GetString(method), System.Text.Encoding.ASCII.GetString(path)));
        CredentialNames.Enqueue(decision.Credential?.Name);
        Identities.Enqueue(decision.Identity);
        Destinations.Enqueue((decision.Host, decision.Port, decision.Dialed?.ToString() ?? string.Empty));
        return seq;
    }

    public bool AuditAdmits() => _inner.AuditAdmits();

    public ValueTask WaitForAuditRoomAsync() => _inner.WaitForAuditRoomAsync();

    public ValueTask<bool> WaitDurableAsync(long auditSeq) => _inner.WaitDurableAsync(auditSeq);

    public bool ChargeEgress(in RequestDecision decision, long bytes) => _inner.ChargeEgress(decision, bytes);

    public void Complete(in ConnectionInfo connection, in RequestDecision decision, in RequestTotals totals)
    {
        _inner.Complete(connection, decision, totals);
        Closes.Enqueue((decision.Host, totals.BytesUp, totals.BytesDown, totals.Reason, totals.Established, totals.Status));
        Interlocked.Increment(ref _completed);
        FirstClose.TrySetResult();
        foreach (var (count, done) in _closeWaiters)
        {
            if (Closes.Count >= count)
            {
                done.TrySetResult();
            }
        }
    }

    /// <summary>Completes when at least <paramref name="count"/> requests have completed (their close records written).</summary>
    public Task WaitForClosesAsync(int count)
    {
        // Registered before the count is read, and Complete reads the waiters after it enqueues: one of
        // the two always sees the other.
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _closeWaiters.Enqueue((count, done));
        if (Closes.Count >= count)
        {
            done.TrySetResult();
        }

        return done.Task.WaitAsync(TimeSpan.FromSeconds(30));
    }

    public long RecordRefusal(in ConnectionInfo connection, in Refusal refusal)
    {
        var seq = _inner.RecordRefusal(connection, refusal);
        if (seq < 0)
        {
            seq = Interlocked.Increment(ref _seq);
        }

        Records.Enqueue((seq, refusal.Status, refusal.Decision, refusal.Reason));
        return seq;
    }

    public void UpstreamConnected(long elapsedTicks) => _inner.UpstreamConnected(elapsedTicks);

    public void Tick() => _inner.Tick();

    public bool NeedsRecheck() => _inner.NeedsRecheck();

    public string? Recheck(in RequestDecision decision, in GateRequest request) => _inner.Recheck(decision, request);
}
