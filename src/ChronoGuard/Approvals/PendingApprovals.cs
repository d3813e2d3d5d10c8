using System.Globalization;
using System.Security.Cryptography;
using ChronoGuard.Audit;
using ChronoGuard.Policy;
using Microsoft.Extensions.Logging;

namespace ChronoGuard.Approvals;

/// <summary>
/// The requests held for an operator's approval (SPEC §9), and the one place their waits end: a grant
/// that covers them (<see cref="ReleaseCovered"/>), a refusal (<see cref="DenyAsync"/>), their own
/// timeout, or drain. A hold is a task completion and a timer: no thread waits. Open approvals are
/// bounded (<see cref="Capacity"/>); past it a request is refused at once, never queued without bound.
/// Holds are rare and slow (a person answers them), so a lock keeps this simple; nothing on the
/// decision path of an allowed or refused request touches it.
/// </summary>
internal sealed class PendingApprovals
{
    private readonly Lock _lock = new();
    private readonly Dictionary<(string Agent, string Host, int Port), PendingApproval> _byKey = [];
    private readonly Dictionary<string, PendingApproval> _byId = new(StringComparer.Ordinal);
    private readonly AuditWriter? _audit;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private bool _draining;
    private bool _fullSaid;

    public PendingApprovals(AuditWriter? audit, TimeProvider time, ILogger logger, int timeoutMs, int capacity)
    {
        _audit = audit;
        _time = time;
        _logger = logger;
        Timeout = TimeSpan.FromMilliseconds(timeoutMs);
        Capacity = capacity;
    }

    /// <summary>How long one held request waits (<c>Admin:AskTimeoutMs</c>).</summary>
    public TimeSpan Timeout { get; }

    /// <summary>Open approvals at most (<c>Admin:MaxPending</c>).</summary>
    public int Capacity { get; }

    /// <summary>Open approvals now, for <c>chronoguard_pending_approvals</c>.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _byId.Count;
            }
        }
    }

    /// <summary>
    /// Holds one request until its approval is settled or it times out. The first request to a
    /// destination opens the approval (a chained <c>approval_pending</c> system record and a log line
    /// naming the command that answers it); later ones join it.
    /// </summary>
    /// <param name="clientGone">Cancelled when the client closes while held: it leaves the approval (ClientGone).</param>
    public async Task<ApprovalOutcome> HoldAsync(string agent, string host, int port, string method, string? source, CancellationToken clientGone = default)
    {
        var key = (agent, Normalize(host), port);
        var waiter = new Waiter();
        PendingApproval? opened = null;
        lock (_lock)
        {
            if (_draining)
            {
                return ApprovalOutcome.Draining;
            }

            if (!_byKey.TryGetValue(key, out var entry))
            {
                if (_byKey.Count >= Capacity)
                {
                    if (!_fullSaid)
                    {
                        _fullSaid = true;
                        ApprovalLog.QueueFull(_logger, Capacity, agent, key.Item2, port);
                    }

                    return ApprovalOutcome.QueueFull;
                }

                _fullSaid = false;
                entry = opened = new PendingApproval("p-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6)), agent, key.Item2, port, method, source, _time.GetUtcNow());
                _byKey[key] = entry;
                _byId[entry.Id] = entry;
            }

            waiter.Entry = entry;
            waiter.Owner = this;
            entry.Waiters.Add(waiter);
            entry.Expires = _time.GetUtcNow() + Timeout;
            // Armed under the lock, so a settle that follows disposes it; if it fires first, Expire
            // waits for the lock and finds the waiter in place.
            waiter.Timer = _time.CreateTimer(static state => ((Waiter)state!).Owner!.Expire((Waiter)state!), waiter, Timeout, System.Threading.Timeout.InfiniteTimeSpan);
        }

        using var left = clientGone.Register(static state => ((Waiter)state!).Owner!.Leave((Waiter)state!, ApprovalOutcome.ClientGone), waiter);
        if (opened is not null)
        {
            await RecordAsync("approval_pending", opened, $"{method} {opened.Host}:{port.ToString(CultureInfo.InvariantCulture)} from {source ?? "?"}; held up to {(int)Timeout.TotalSeconds} s").ConfigureAwait(false);
            ApprovalLog.Pending(_logger, opened.Id, agent, method, opened.Host, port, (int)Math.Ceiling(Timeout.TotalSeconds));
        }

        return await waiter.Done.Task.ConfigureAwait(false);
    }

    /// <summary>The open approvals, oldest first.</summary>
    public List<PendingApprovalView> List()
    {
        var list = new List<PendingApprovalView>();
        lock (_lock)
        {
            foreach (var e in _byId.Values)
            {
                list.Add(new PendingApprovalView(e.Id, e.Agent, e.Host, e.Port, e.Method, e.Source, e.Created, e.Expires, e.Waiters.Count));
            }
        }

        list.Sort(static (a, b) => a.Created.CompareTo(b.Created));
        return list;
    }

    /// <summary>The open approval with this id, if any (it may be settled or time out right after).</summary>
    public PendingApprovalView? Find(string id)
    {
        lock (_lock)
        {
            return _byId.TryGetValue(id, out var e) ? new PendingApprovalView(e.Id, e.Agent, e.Host, e.Port, e.Method, e.Source, e.Created, e.Expires, e.Waiters.Count) : null;
        }
    }

    /// <summary>
    /// A grant is in force: every open approval of its agent whose host it covers is released (its
    /// held requests are decided again, and the grant allows them). Returns how many requests went on.
    /// </summary>
    public int ReleaseCovered(RuntimeGrant grant)
    {
        var released = new List<PendingApproval>();
        lock (_lock)
        {
            foreach (var e in _byId.Values)
            {
                if (string.Equals(e.Agent, grant.Agent, StringComparison.Ordinal) && grant.Covers(System.Text.Encoding.ASCII.GetBytes(e.Host)))
                {
                    released.Add(e);
                }
            }
        }

        var held = 0;
        foreach (var e in released)
        {
            var n = Settle(e, ApprovalOutcome.Approved);
            held += n;
            ApprovalLog.Settled(_logger, e.Id, "approved", e.Agent, e.Host, e.Port, n, "go on under grant " + grant.Id);
        }

        return held;
    }

    /// <summary>
    /// An operator refused the approval: chained as an <c>approval_deny</c> system record naming them,
    /// then every request it holds is refused. Null when no open approval has that id.
    /// </summary>
    public async Task<int?> DenyAsync(string id, string actor, string? reason)
    {
        PendingApproval? entry;
        lock (_lock)
        {
            _byId.TryGetValue(id, out entry);
        }

        if (entry is null)
        {
            return null;
        }

        await RecordAsync("approval_deny", entry, $"by {actor}: {(string.IsNullOrWhiteSpace(reason) ? "no reason given" : reason)}").ConfigureAwait(false);
        var n = Settle(entry, ApprovalOutcome.Denied);
        ApprovalLog.Settled(_logger, entry.Id, "denied by " + actor, entry.Agent, entry.Host, entry.Port, n, "refused 403 approval_denied");
        return n;
    }

    /// <summary>
    /// After a reload: every open approval the policy no longer asks for (it now allows, blocks or
    /// denies the destination, or the agent is gone) is settled, and its requests are decided again
    /// under the new policy. The others stay open with their ids, so an operator's pending list holds.
    /// </summary>
    public int Reconsider(Func<string, string, int, bool> stillAsks)
    {
        List<PendingApproval> changed = [];
        lock (_lock)
        {
            foreach (var e in _byId.Values)
            {
                if (!stillAsks(e.Agent, e.Host, e.Port))
                {
                    changed.Add(e);
                }
            }
        }

        var held = 0;
        foreach (var e in changed)
        {
            var n = Settle(e, ApprovalOutcome.Reconsidered);
            held += n;
            ApprovalLog.Settled(_logger, e.Id, "closed by a policy reload", e.Agent, e.Host, e.Port, n, "decided again under the new policy");
        }

        return held;
    }

    /// <summary>The sidecar is stopping: every held request is answered now (503), and none is held from here on.</summary>
    public void Drain()
    {
        List<PendingApproval> all;
        lock (_lock)
        {
            _draining = true;
            all = [.. _byId.Values];
        }

        foreach (var e in all)
        {
            Settle(e, ApprovalOutcome.Draining);
        }
    }

    /// <summary>Closes the approval and ends every wait in it with <paramref name="outcome"/>; returns how many there were.</summary>
    private int Settle(PendingApproval entry, ApprovalOutcome outcome)
    {
        Waiter[] waiters;
        lock (_lock)
        {
            if (!_byId.Remove(entry.Id))
            {
                return 0; // settled or expired by someone else first
            }

            _byKey.Remove((entry.Agent, entry.Host, entry.Port));
            waiters = [.. entry.Waiters];
            entry.Waiters.Clear();
        }

        foreach (var w in waiters)
        {
            w.Timer?.Dispose();
            w.Done.TrySetResult(outcome);
        }

        return waiters.Length;
    }

    /// <summary>One held request's timeout: it leaves its approval, which closes when nobody waits in it any more.</summary>
    private void Expire(Waiter waiter) => Leave(waiter, ApprovalOutcome.TimedOut);

    /// <summary>One held request stops waiting (its timeout, or its client left); the approval closes when nobody waits in it any more.</summary>
    private void Leave(Waiter waiter, ApprovalOutcome outcome)
    {
        var entry = waiter.Entry!;
        bool closed;
        lock (_lock)
        {
            if (!entry.Waiters.Remove(waiter))
            {
                return; // settled first
            }

            closed = entry.Waiters.Count == 0;
            if (closed)
            {
                _byId.Remove(entry.Id);
                _byKey.Remove((entry.Agent, entry.Host, entry.Port));
            }
        }

        waiter.Timer?.Dispose();
        waiter.Done.TrySetResult(outcome);
        if (closed)
        {
            // The pending line said what would answer it; this one says nothing will any more.
            ApprovalLog.Closed(_logger, entry.Id, entry.Agent, entry.Host, entry.Port, outcome == ApprovalOutcome.TimedOut ? "nobody answered within Admin:AskTimeoutMs" : "its client left");
        }
    }

    private async Task RecordAsync(string evt, PendingApproval entry, string detail)
    {
        if (_audit is null)
        {
            return;
        }

        await _audit.WaitForRoomAsync().ConfigureAwait(false);
        SystemRecords.Append(_audit, evt, null, detail, entry.Agent, entry.Host + ":" + entry.Port.ToString(CultureInfo.InvariantCulture), entry.Id);
    }

    /// <summary>Host names compare without case and without one trailing dot, as grants match them.</summary>
    private static string Normalize(string host) => host.TrimEnd('.').ToLowerInvariant();

    /// <summary>One held request: what it awaits, and its own timeout.</summary>
    internal sealed class Waiter
    {
        // Continuations run off the settling thread: an approval must not run a tunnel on the admin request's thread.
        public TaskCompletionSource<ApprovalOutcome> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public PendingApproval? Entry { get; set; }

        public ITimer? Timer { get; set; }

        public PendingApprovals? Owner { get; set; }
    }
}
