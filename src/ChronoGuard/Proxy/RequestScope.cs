using System.Buffers;
using System.Net;
using System.Runtime.CompilerServices;
using System.Text;
using ChronoGuard.Approvals;
using ChronoGuard.Http;
using ChronoGuard.Net;
using ChronoGuard.Policy;

namespace ChronoGuard.Proxy;

/// <summary>
/// One request, from its decision to its end, whatever front end carried it, and everything it holds:
/// the gate's decision (and with it a tunnel slot and the policy snapshot), the guarded addresses and
/// the upstream dialed from them, its one decision record, egress charges, byte counts, the close
/// record and its buffers. Front ends act only through it: the one upstream send charges egress first
/// (<see cref="SendUpstreamAsync(ReadOnlyMemory{byte})"/>), the one dial takes only guarded addresses
/// (<see cref="DialAsync"/>), the one record happens before any byte goes up. <see cref="Exit"/>,
/// called from one <c>finally</c> in <see cref="ClientConnection"/> for every path (refusal, failed
/// dial, exception, drain, revoke), is the only place any of it is released.
/// </summary>
internal sealed class RequestScope
{
    private const int MaxResponseHeadBytes = 64 * 1024;
    private const int MaxResponseHeaders = 256;
    private const int RewriteSlack = 1024;

    /// <summary>A refused inspected request's body up to this size is read away to keep the connection; a larger one closes it.</summary>
    private const long MaxDiscardBytes = 64 * 1024;

    private static readonly HttpHeadPool ResponseHeads = new();

    private readonly ClientConnection _connection;
    private readonly IRequestGate _gate;
    private readonly FrontEnd _frontEnd;
    private HttpHead? _head;
    private HttpHead? _response;
    private byte[]? _scratch;
    private long _bytesUp;
    private long _bytesDown;
    private long _establishedMs = -1;
    private bool _decided;
    private bool _recorded;
    private bool _keepUpstream;
    private bool _exited;
    private bool _guardRefused;
    private string? _closeReason;
    private int _closeStatus;
    private bool _failedAfterRecord;

    // 0: free; 1: the heartbeat is rechecking (and reading the head); 2: exited, no more rechecks.
    private int _rechecking;

    /// <summary>The decision; a field so front ends and the gate read it in place.</summary>
    public RequestDecision Decision;

    /// <param name="head">The HTTP request head, for front ends that have one (returned to its pool at exit).</param>
    public RequestScope(ClientConnection connection, FrontEnd frontEnd, HttpHead? head)
    {
        _connection = connection;
        _gate = connection.Context.Gate;
        _frontEnd = frontEnd;
        _head = head;
        Decision.AuditSeq = -1;
    }

    public ClientConnection Connection => _connection;

    public ProxyContext Context => _connection.Context;

    public FrontEnd FrontEnd => _frontEnd;

    public bool IsTunnel => _frontEnd.IsTunnel();

    /// <summary>Whether bytes may flow now (from <see cref="Established"/> on): what the heartbeat's recheck looks at, whatever the phase.</summary>
    public bool IsEstablished => Volatile.Read(ref _establishedMs) >= 0;

    /// <summary>The HTTP request head, until a tunnel gives it back (<see cref="ReleaseHead"/>).</summary>
    public HttpHead Head => _head ?? throw new InvalidOperationException("the request head was released");

    public long BytesUp => Volatile.Read(ref _bytesUp);

    /// <summary>The origin's response head, rented on first use and returned at exit.</summary>
    public HttpHead ResponseHead => _response ??= ResponseHeads.Rent(MaxResponseHeadBytes, MaxResponseHeaders);

    /// <summary>Room for a rewritten request or response head (with the injected header, when there is one).</summary>
    public byte[] Scratch => _scratch ??= ArrayPool<byte>.Shared.Rent(Math.Max(Context.Options.MaxHeaderBytes, MaxResponseHeadBytes) + RewriteSlack
        + (Injects is { } credential ? credential.HeaderName.Length + credential.HeaderValue.Length + 4 : 0));

    /// <summary>
    /// The credential whose header this request carries upstream (SPEC §7), or null. Only a request
    /// inside an inspected tunnel: its upstream is always TLS to the tunnel's host, dialed from
    /// guarded addresses and validated for that name (<see cref="Dialer"/>), and the gate bound the
    /// credential to the agent, the host and the placeholder it saw.
    /// </summary>
    public CompiledCredential? Injects => _frontEnd == FrontEnd.Inspected ? Decision.Credential : null;

    /// <summary>
    /// Asks the gate, once; false when the request is refused (send it with <see cref="RefuseAsync"/>).
    /// <paramref name="knownHost"/> is the host as a string when the front end already has it (a kept upstream's).
    /// </summary>
    public bool Decide(in GateRequest request, string? knownHost = null)
    {
        if (_decided)
        {
            throw new InvalidOperationException("a request is decided once");
        }

        Decision = _gate.Decide(_connection.Info, request);
        _decided = true;
        Decision.Host = knownHost ?? Encoding.ASCII.GetString(request.Host);
        Decision.Port = request.Port;
        Decision.AuditSeq = -1;
        if (Decision.Result.Reason is Reasons.PrivateDestination or Reasons.MetadataDestination && Decision.Dialed is null
            && IPAddress.TryParse(Decision.Host.AsSpan().Trim('[').TrimEnd(']'), out var literal))
        {
            // The guard refused the IP literal itself, before anything was resolved: the record names
            // the refused address (dialedIp), as it does for a refused resolved address.
            Decision.Dialed = literal;
        }

        return Decision.Allowed;
    }

    /// <summary>
    /// Nothing allowed or blocked the request and its policy says <c>ask</c> (SPEC §9): it waits for an
    /// operator (<see cref="HoldAsync"/>) before anything else happens to it. Never in observe mode
    /// (there the request went through) and never for a guard or budget refusal, which are decided
    /// before the default.
    /// </summary>
    public bool AwaitsApproval => !Decision.Allowed && ReferenceEquals(Decision.Result.Reason, Reasons.ApprovalRequired)
        && Decision.Agent is not null && Context.Approvals is not null;

    /// <summary>
    /// Holds the request until its approval is settled: approved, it is decided again under the
    /// grant (<see cref="IRequestGate.Reconsider"/>: tokens, credentials and a tunnel slot as for any
    /// request); refused, timed out or drained, the refusal becomes its decision. Its one decision
    /// record is written afterwards by the front end's usual path, as for any decided request. The
    /// wait costs no thread, and the connection counts toward MaxConnections throughout.
    /// </summary>
    public async Task HoldAsync()
    {
        var clock = _connection.Clock;
        clock.Enter(ConnectionPhase.Held);
        var method = _frontEnd switch
        {
            FrontEnd.Connect => "CONNECT",
            FrontEnd.Socks => "SOCKS",
            FrontEnd.Transparent => "TRANSPARENT",
            _ => _head is { } h ? Encoding.ASCII.GetString(h.Span(h.Method)) : "?",
        };
        ApprovalOutcome outcome;
        using (var gone = new CancellationTokenSource())
        {
            var watch = WatchClientAsync(gone);
            outcome = await Context.Approvals!.HoldAsync(Decision.Agent!.Id, Decision.Host, Decision.Port, method, _connection.Info.Remote?.Address.ToString(), gone.Token).ConfigureAwait(false);
            if (!watch.IsCompleted)
            {
                _connection.Input.CancelPendingRead();
            }

            await watch.ConfigureAwait(false);
        }

        clock.Enter(ConnectionPhase.Busy);
        var policy = Decision.Result.Policy;
        var rule = Decision.Result.Rule;
        switch (outcome)
        {
            case ApprovalOutcome.Approved or ApprovalOutcome.Reconsidered:
                var (host, port) = (Decision.Host, Decision.Port);
                Decision = _gate.Reconsider(_connection.Info, Decision, DescribeAgain());
                (Decision.Host, Decision.Port, Decision.AuditSeq) = (host, port, -1);
                return;
            case ApprovalOutcome.Denied:
                Decision.Result = DecisionResult.Refuse(Policy.Decision.Deny, 403, Reasons.ApprovalDenied, policy, rule);
                return;
            case ApprovalOutcome.TimedOut:
                Decision.Result = DecisionResult.Refuse(Policy.Decision.Deny, 403, Reasons.ApprovalTimeout, policy, rule);
                return;
            case ApprovalOutcome.ClientGone:
                // Recorded (the hold was), answered to nobody, and never sent on: 499 as nginx names it.
                Decision.Result = DecisionResult.Refuse(Policy.Decision.Deny, 499, ProxyReasons.ClientClosed, policy, rule);
                return;
            case ApprovalOutcome.QueueFull:
                Decision.Result = DecisionResult.Refuse(Policy.Decision.RateLimited, 429, Reasons.ApprovalQueueFull, policy, rule, retryAfter: 1);
                return;
            default:
                Decision.Result = DecisionResult.Refuse(Policy.Decision.Deny, 503, ProxyReasons.Drain);
                return;
        }
    }

    /// <summary>
    /// While held, nobody else reads the client: this watches for it leaving (EOF or a reset), so a
    /// request whose client is gone is dropped and never sent on if approved later. Bytes the client
    /// sends meanwhile (a body, a ClientHello) are left in the pipe, unconsumed; when the hold ends
    /// (<see cref="System.IO.Pipelines.PipeReader.CancelPendingRead"/>) they are marked unexamined
    /// again, so the next read returns them at once.
    /// </summary>
    private async Task WatchClientAsync(CancellationTokenSource gone)
    {
        var input = _connection.Input;
        try
        {
            while (true)
            {
                var result = await input.ReadAsync().ConfigureAwait(false);
                if (result.IsCanceled)
                {
                    input.AdvanceTo(result.Buffer.Start);
                    return;
                }

                if (result.IsCompleted)
                {
                    input.AdvanceTo(result.Buffer.Start);
                    gone.Cancel();
                    return;
                }

                input.AdvanceTo(result.Buffer.Start, result.Buffer.End);
            }
        }
        catch (Exception ex) when (ex is IOException or System.Net.Sockets.SocketException or ObjectDisposedException or InvalidOperationException)
        {
            gone.Cancel();
        }
    }

    /// <summary>The request as the gate saw it, described again from what the scope kept (the decided host, the head where there is one).</summary>
    private GateRequest DescribeAgain()
    {
        var host = Encoding.ASCII.GetBytes(Decision.Host);
        if (_head is not { } head)
        {
            return new GateRequest { FrontEnd = _frontEnd, Host = host, Port = Decision.Port, Redirected = _frontEnd == FrontEnd.Transparent };
        }

        var tunnel = IsTunnel;
        return new GateRequest
        {
            FrontEnd = _frontEnd,
            Host = host,
            Port = Decision.Port,
            Method = tunnel ? default : head.Span(head.Method),
            Path = tunnel ? default : head.Path,
            PathWithoutParameters = head.PathWithoutParameters,
            HasPathParameters = !tunnel && head.WithoutParametersLength >= 0,
            UserAgent = head.Span(head.UserAgent),
            RawHead = head.Buffer.AsSpan(0, head.Length),
            Redirected = _frontEnd == FrontEnd.Transparent,
        };
    }

    /// <summary>The addresses this request may dial, as its connection finds them and the guard judges them (see <see cref="GuardedAddresses"/>).</summary>
    public ValueTask<(ConnectOutcome Outcome, GuardedAddresses Addresses)> ResolveAsync() => _connection.ResolveAsync(this);

    /// <summary>
    /// A refusal the front end gives a decided request (a loop, a name that does not bind to its
    /// address). In observe mode it is let through and recorded as not enforced, unless
    /// <paramref name="always"/> (a refusal that must hold even there, and then is the decision). Else
    /// it becomes the decision only if nothing refused the request before (<see cref="Refused"/>).
    /// </summary>
    public void Overrule(in DecisionResult refusal, bool always)
    {
        if (always)
        {
            Decision.Result = refusal;
            Decision.Allowed = false;
            return;
        }

        Refused(refusal);
        Decision.Allowed = Decision.Allowed && Decision.Policy is { IsObserve: true };
    }

    /// <summary>
    /// A refusal that says more exactly why the gate's own refusal holds (a nameless redirected
    /// destination nothing allows is <c>unresolved_destination</c>, not <c>default_deny</c>): it takes
    /// that refusal's place, in every mode, and lets through exactly what it let through.
    /// </summary>
    public void Restate(in DecisionResult refusal) => Decision.Result = refusal;

    /// <summary>
    /// A later check refused the request: the record keeps the first refusal (SPEC §4's order), since
    /// enforce stops there and never runs the later check. So in observe mode, where every check runs,
    /// a guard, TLS or binding refusal never hides the <c>domain_blocked</c> before it.
    /// </summary>
    private void Refused(in DecisionResult refusal)
    {
        if (Decision.Result.IsAllow)
        {
            Decision.Result = refusal;
        }
    }

    /// <summary>
    /// Dials the guarded addresses; on success the upstream becomes the connection's (dropped by
    /// <see cref="Exit"/> unless kept for the next request). The record will name the address dialed.
    /// </summary>
    [AsyncMethodBuilder(typeof(PooledValueTaskBuilder<>))]
    public async ValueTask<ConnectOutcome> DialAsync(GuardedAddresses addresses)
    {
        var dial = await Dialer.ConnectAsync(Context, Decision.Host, Decision.Port, addresses, tls: _frontEnd == FrontEnd.Inspected).ConfigureAwait(false);
        Dialed(dial.Address, dial.ElapsedTicks, dial.Upstream is not null);
        if (dial.Upstream is { } upstream)
        {
            _connection.SetUpstream(upstream);
        }

        return dial.Outcome;
    }

    /// <summary>
    /// The network guard over every resolved address, as one verdict (SPEC §4): the addresses that
    /// pass are moved to the front and only they are dialed, and the decision stands as it was; only
    /// when none passes does the guard's refusal become the decision (with the first refused address;
    /// unless an earlier step refused already, observe mode having let that through), and then observe
    /// mode dials them all. Judging an address never changes the decision by itself, so a name that
    /// also resolves to a refused address is recorded as what happened: the dial to the allowed one.
    /// Returns how many addresses to dial (0: refused).
    /// </summary>
    public int JudgeAddresses(IPAddress[] addresses)
    {
        var passed = 0;
        var observed = false;
        IPAddress? refused = null;
        DecisionResult refusal = default;
        for (var i = 0; i < addresses.Length; i++)
        {
            var dial = _gate.AcceptAddress(Decision, addresses[i], out var judged);
            if (judged.IsAllow)
            {
                addresses[passed++] = addresses[i];
            }
            else if (refused is null)
            {
                refused = addresses[i];
                refusal = judged;
                observed = dial;
            }
        }

        if (passed > 0 || refused is null)
        {
            return passed;
        }

        // The guard's verdict on the address dialed replaces its verdict on the first only when the
        // guard's refusal is the decision.
        _guardRefused = observed && Decision.Result.IsAllow;
        Refused(refusal);
        Decision.Dialed = refused;
        Decision.Allowed = observed;
        return observed ? addresses.Length : 0;
    }

    /// <summary>Whether the guard passes an address already connected (a kept upstream): the decision is not touched.</summary>
    public bool MayReuse(IPAddress address) => _gate.AcceptAddress(Decision, address, out var judged) && judged.IsAllow;

    /// <summary>
    /// The client has said nothing and waits for the server to speak first (SMTP, MySQL; SPEC §10): the
    /// tunnel is dialed without waiting for a ClientHello, except on 443, where every client is TLS and
    /// speaks first. Its first bytes are judged when they come (<see cref="DefersSniCheck"/>).
    /// </summary>
    public bool AwaitsServer { get; init; }

    /// <summary>
    /// Whether the ClientHello check <see cref="RequiresSniCheck"/> skipped for a client that waits for
    /// its server is owed once the tunnel runs: its first bytes, whenever they come, are judged as a
    /// ClientHello before any of them is relayed. Without it, 200 ms of silence and then a ClientHello
    /// for another name served at the same address (a CDN's) would pass <c>requireSniMatch</c>.
    /// </summary>
    public bool DefersSniCheck() => AwaitsServer && Decision.Port != 443 && Decision.Result.IsAllow && _gate.RequiresSniCheck(Decision);

    /// <summary>
    /// Judges a deferred ClientHello (<see cref="DefersSniCheck"/>). The decision was recorded when the
    /// tunnel opened, so a refusal is not a second decision: its reason is the reason the tunnel closes.
    /// Observe mode passes it, as it passes an early one.
    /// </summary>
    public SniVerdict CheckLateClientHello(in ReadOnlySequence<byte> firstBytes, ClientHelloEnd end, out string reason)
    {
        var verdict = _gate.CheckClientHello(Decision, firstBytes, end, out var judged);
        reason = verdict == SniVerdict.Refuse ? judged.Reason : string.Empty;
        return verdict;
    }

    /// <summary>
    /// Whether the tunnel waits for the client's ClientHello before dialing. Not when observe mode let a
    /// refusal through: the first refusal is the record's (<see cref="Refused"/>), so the check could
    /// change nothing, and a client waiting for the server to speak (SMTP through CONNECT, on a port a
    /// policy-less run records as <c>port_not_allowed</c>) is not held until the header timeout.
    /// </summary>
    public bool RequiresSniCheck() => Decision.Result.IsAllow && _gate.RequiresSniCheck(Decision) && !(AwaitsServer && Decision.Port != 443);

    public SniVerdict CheckClientHello(in ReadOnlySequence<byte> firstBytes, ClientHelloEnd end)
    {
        var verdict = _gate.CheckClientHello(Decision, firstBytes, end, out var judged);
        if (verdict != SniVerdict.NeedMore && !judged.IsAllow)
        {
            Refused(judged);
            Decision.Allowed = verdict == SniVerdict.Pass;
        }

        return verdict;
    }

    /// <summary>The upstream was dialed (or refused at the TCP level).</summary>
    private void Dialed(IPAddress? address, long elapsedTicks, bool connected)
    {
        if (_guardRefused && address is not null && !address.Equals(Decision.Dialed))
        {
            // Observe mode dialed past the guard's refusal: the record names the address dialed, so
            // its reason must be the guard's verdict on that address.
            _gate.AcceptAddress(Decision, address, out Decision.Result);
        }

        Decision.Dialed = address;
        if (connected)
        {
            _gate.UpstreamConnected(elapsedTicks);
        }
    }

    /// <summary>The request's one decision record, with the status the client is answered.</summary>
    private void Record(int status)
    {
        if (_recorded)
        {
            return;
        }

        _recorded = true;
        var head = _head;
        var method = _frontEnd switch
        {
            FrontEnd.Connect => "CONNECT"u8,
            FrontEnd.Transparent => "TRANSPARENT"u8,
            FrontEnd.Socks => "SOCKS"u8,
            _ => head is null ? default : head.Span(head.Method),
        };
        var path = _frontEnd is not (FrontEnd.Http or FrontEnd.Inspected) || head is null ? default : head.Span(head.TargetPath);
        Decision.AuditSeq = _gate.Record(_connection.Info, Decision, method, path, status);
    }

    /// <summary>
    /// Records the allowed request and waits until the record is durable when the mode says so. False
    /// when it never will be: the request is then refused 503 <c>audit_unavailable</c> (sent here when
    /// <paramref name="answer"/>), and nothing goes upstream. The decision record already exists (it
    /// had to, to be waited for), so the refusal is not a second decision record: the close record
    /// tells it, and the answer names the decision record's seq.
    /// </summary>
    [AsyncMethodBuilder(typeof(PooledValueTaskBuilder<>))]
    public async ValueTask<bool> RecordAllowedAsync(bool answer = true)
    {
        if (!_gate.AuditAdmits())
        {
            // The writer faulted between the decision and its record: nothing has been recorded yet, so
            // the request becomes the 503 refusal, and that is its one decision record (queued for the
            // writer's recovery, or counted unrecorded), never an ALLOW for a request not forwarded.
            Decision.Result = DecisionResult.Refuse(Policy.Decision.Deny, 503, ProxyReasons.AuditUnavailable);
            if (answer)
            {
                await RefuseAsync().ConfigureAwait(false);
            }
            else
            {
                RecordRefusal();
            }

            return false;
        }

        Record(200);
        if (await _gate.WaitDurableAsync(Decision.AuditSeq).ConfigureAwait(false))
        {
            return true;
        }

        _closeReason = ProxyReasons.AuditUnavailable;
        _failedAfterRecord = true;
        if (answer)
        {
            await AnswerAfterRecordAsync(new Refusal(503, "DENY", ProxyReasons.AuditUnavailable)).ConfigureAwait(false);
        }

        return false;
    }

    /// <summary>
    /// Records the refusal in <see cref="Decision"/> and sends it. True when the connection goes on: a
    /// request inside an inspected tunnel refused by policy keeps its connection (SPEC §7) once its body,
    /// if it has a small one framed by Content-Length, is read and dropped; every other refusal (a
    /// chunked or large body, Expect: 100-continue, another front end) ends it.
    /// </summary>
    public async Task<bool> RefuseAsync()
    {
        Record(Decision.Result.Status);
        var keepOpen = _frontEnd == FrontEnd.Inspected && _head is { KeepAlive: true, Chunked: false, ExpectContinue: false, ContentLength: <= MaxDiscardBytes } head
            && !_connection.IsDraining && (head.ContentLength <= 0 || await DiscardBodyAsync(head.ContentLength).ConfigureAwait(false));
        await _connection.RefuseAsync(ToRefusal(Decision.Result, Decision.AuditSeq), audit: false, keepOpen).ConfigureAwait(false);
        return keepOpen && !_connection.IsAborted;
    }

    /// <summary>Reads a refused request's body away, under the body timeout; false when it did not arrive whole.</summary>
    private async ValueTask<bool> DiscardBodyAsync(long length)
    {
        _connection.Clock.Enter(ConnectionPhase.ReadingBody);
        var result = await BodyCopier.CopyExactAsync(_connection.Input, default(DiscardSink), length).ConfigureAwait(false);
        _connection.Clock.Enter(ConnectionPhase.Busy);
        return result.IsComplete;
    }

    /// <summary>Records a refusal judged after the client was answered 200 (the ClientHello check): nothing more is sent.</summary>
    public void RecordRefusal()
    {
        if (!Decision.Result.IsAllow)
        {
            Record(Decision.Result.Status);
        }
    }

    /// <summary>
    /// The decision stands but the request failed on the way (upstream unreachable, bad upstream
    /// response): the record (if not yet written) carries this status and reason, and the client is
    /// answered with them unless <paramref name="answer"/> is false (the client already has a 200).
    /// </summary>
    public Task FailAsync(int status, string reason, bool answer = true)
    {
        _closeReason ??= reason;
        if (!_recorded && !Decision.Result.IsAllow)
        {
            // A refusal observe mode let through, then the dial failed: the record keeps the refusal
            // (what enforce would have done) with the status the client got, and the close record
            // tells the failure.
            Decision.Result.Status = status;
            Record(status);
            _failedAfterRecord = true;
            _closeStatus = answer ? status : 0;
        }
        else if (!_recorded)
        {
            Decision.Result.Status = status;
            Decision.Result.Reason = reason;
            Record(status);
        }
        else
        {
            _failedAfterRecord = true;
            _closeStatus = answer ? status : 0;
        }

        return answer
            ? _connection.RefuseAsync(new Refusal(status, DecisionNames.Name(Decision.Result.Decision), reason) { AuditSeq = Decision.AuditSeq }, audit: false)
            : Task.CompletedTask;
    }

    /// <summary>
    /// A refusal of the proxy's own after the request was recorded (bad body framing, body timeout,
    /// egress budget): one request keeps one decision record, so the close record tells this one.
    /// </summary>
    public Task RefuseProtocolAsync(int status, string decision, string reason)
    {
        _closeReason ??= reason;
        return AnswerAfterRecordAsync(new Refusal(status, decision, reason));
    }

    /// <summary>
    /// Answers a refusal that came after the decision record: the close record carries its status and
    /// reason, and the answer names the decision record (X-ChronoGuard-Audit-Seq), the one record of
    /// this request, whose connId leads to the close record.
    /// </summary>
    private Task AnswerAfterRecordAsync(Refusal refusal)
    {
        _failedAfterRecord = true;
        _closeStatus = refusal.Status;
        return _connection.RefuseAsync(refusal with { AuditSeq = Decision.AuditSeq }, audit: false);
    }

    /// <summary>From here bytes may flow: the exit writes a close record, and the heartbeat rechecks the request.</summary>
    public void Established()
    {
        // Published last: the heartbeat thread reads it to decide whether to recheck this request.
        Volatile.Write(ref _establishedMs, Context.NowMs());
    }

    /// <summary>
    /// The one way bytes go upstream, on every path and for every front end (request heads, bodies,
    /// tunnel bytes): charged to the egress account first, then sent. IO failures throw.
    /// </summary>
    /// <returns>False when these bytes would overspend the agent's egress budget: nothing was sent.</returns>
    [AsyncMethodBuilder(typeof(PooledValueTaskBuilder<>))]
    public async ValueTask<bool> SendUpstreamAsync(ReadOnlyMemory<byte> data)
    {
        if (!ChargeUpstream(data.Length))
        {
            return false;
        }

        await UpstreamTransport().SendAsync(data).ConfigureAwait(false);
        return true;
    }

    /// <inheritdoc cref="SendUpstreamAsync(ReadOnlyMemory{byte})"/>
    [AsyncMethodBuilder(typeof(PooledValueTaskBuilder<>))]
    public async ValueTask<bool> SendUpstreamAsync(ReadOnlySequence<byte> data)
    {
        if (!ChargeUpstream(data.Length))
        {
            return false;
        }

        await UpstreamTransport().SendAsync(data).ConfigureAwait(false);
        return true;
    }

    /// <summary>The one way response or tunnel bytes go to the client: sent, then counted.</summary>
    [AsyncMethodBuilder(typeof(PooledValueTaskBuilder<>))]
    public async ValueTask<bool> SendDownstreamAsync(ReadOnlyMemory<byte> data)
    {
        await _connection.Transport.SendAsync(data).ConfigureAwait(false);
        SentDownstream(data.Length);
        return true;
    }

    /// <inheritdoc cref="SendDownstreamAsync(ReadOnlyMemory{byte})"/>
    [AsyncMethodBuilder(typeof(PooledValueTaskBuilder<>))]
    public async ValueTask<bool> SendDownstreamAsync(ReadOnlySequence<byte> data)
    {
        await _connection.Transport.SendAsync(data).ConfigureAwait(false);
        SentDownstream(data.Length);
        return true;
    }

    private Net.Transport UpstreamTransport() =>
        _connection.Upstream?.Transport ?? throw new ObjectDisposedException(nameof(Upstream), "the upstream is gone");

    /// <summary>The egress account: false when these bytes would overspend the agent's budget.</summary>
    private bool ChargeUpstream(long bytes)
    {
        _connection.Clock.Touch();
        if (_gate.ChargeEgress(Decision, bytes))
        {
            Interlocked.Add(ref _bytesUp, bytes);
            return true;
        }

        _closeReason ??= Reasons.EgressBudget;
        return false;
    }

    private void SentDownstream(long bytes)
    {
        _connection.Clock.Touch();
        Interlocked.Add(ref _bytesDown, bytes);
    }

    /// <summary>The close record's reason, unless an earlier cause was already set.</summary>
    public void SetCloseReason(string reason) => _closeReason ??= reason;

    /// <summary>The connection's upstream may carry the next request.</summary>
    public void KeepUpstream() => _keepUpstream = true;

    /// <summary>A tunnel no longer needs its head; giving it back early keeps an open tunnel small.</summary>
    /// <summary>
    /// Judges the request again under the current policy (the heartbeat, after a reload or a new
    /// minute): the close reason when it may not go on. A forwarded or inspected request is described
    /// with its method, path and user agent, so a new path rule ends a long response on that path. The
    /// heartbeat runs on the timer's thread while this request may be exiting on its own: the
    /// <c>_rechecking</c> handshake with <see cref="Exit"/> keeps the head from going back to its pool
    /// (and to another request) while it is read here.
    /// </summary>
    public string? Recheck()
    {
        if (Interlocked.CompareExchange(ref _rechecking, 1, 0) != 0)
        {
            return null;
        }

        try
        {
            if (!IsTunnel && _head is { } head)
            {
                return _gate.Recheck(Decision, new GateRequest
                {
                    FrontEnd = _frontEnd,
                    Host = head.Span(head.TargetHost),
                    Port = head.TargetPort,
                    Method = head.Span(head.Method),
                    Path = head.Path,
                    PathWithoutParameters = head.PathWithoutParameters,
                    HasPathParameters = head.WithoutParametersLength >= 0,
                    UserAgent = head.Span(head.UserAgent),
                });
            }

            // Once per heartbeat that needs it, not per request: the host's bytes are made here.
            return _gate.Recheck(Decision, new GateRequest { FrontEnd = _frontEnd, Host = Encoding.ASCII.GetBytes(Decision.Host), Port = Decision.Port });
        }
        finally
        {
            Volatile.Write(ref _rechecking, 0);
        }
    }

    /// <summary>Waits out a recheck in progress (a few microseconds at most) and refuses later ones.</summary>
    private void EndRechecks()
    {
        var spin = default(SpinWait);
        while (Interlocked.CompareExchange(ref _rechecking, 2, 0) is not (0 or 2))
        {
            spin.SpinOnce(sleep1Threshold: -1);
        }
    }

    public void ReleaseHead()
    {
        if (!_recorded)
        {
            return;
        }

        ClientConnection.ReturnHead(_head);
        _head = null;
    }

    /// <summary>
    /// The one exit. A decided request always has its record (a path that ended without one, such as
    /// an exception or a client gone mid-way, is recorded here with status 499), then the gate gives
    /// back the tunnel slot and writes the close record, the upstream is dropped unless kept for the
    /// next request, and every buffer goes back.
    /// </summary>
    public void Exit()
    {
        if (_exited)
        {
            return;
        }

        _exited = true;
        try
        {
            if (_decided)
            {
                if (!_recorded)
                {
                    var reason = _closeReason ?? (_connection.IsAborted ? CloseReasonOf(_connection) : ProxyReasons.ClientClosed);
                    _closeReason = reason;
                    Decision.Result.Reason = Decision.Result.IsAllow ? reason : Decision.Result.Reason;
                    Record(499);
                }

                var established = _establishedMs >= 0;
                var duration = established ? Context.NowMs() - _establishedMs : 0;
                _gate.Complete(_connection.Info, Decision, new RequestTotals(established, BytesUp, Volatile.Read(ref _bytesDown), duration, _closeReason ?? "closed", _closeStatus, _failedAfterRecord));
            }
        }
        finally
        {
            if (!_keepUpstream || _connection.Upstream?.TryPark() != true)
            {
                _connection.DropUpstream();
            }

            EndRechecks();
            ClientConnection.ReturnHead(_head);
            _head = null;
            if (_response is not null)
            {
                ResponseHeads.Return(_response);
                _response = null;
            }

            if (_scratch is not null)
            {
                // A head with an injected secret in it is wiped before the array goes back to the pool.
                ArrayPool<byte>.Shared.Return(_scratch, clearArray: Injects is not null);
                _scratch = null;
            }
        }
    }

    /// <summary>The close reason for a connection the heartbeat or the server ended.</summary>
    public static string CloseReasonOf(ClientConnection connection) => connection.Clock.Fired switch
    {
        TimeoutKind.Idle => ProxyReasons.IdleTimeout,
        TimeoutKind.Drain => ProxyReasons.Drain,
        TimeoutKind.Body => ProxyReasons.BodyTimeout,
        TimeoutKind.Header => ProxyReasons.HeaderTimeout,
        TimeoutKind.Revoked => connection.RevokedReason ?? Reasons.PolicyRevoked,
        _ => ProxyReasons.Reset,
    };

    internal static Refusal ToRefusal(in DecisionResult r, long auditSeq) => new(r.Status, DecisionNames.Name(r.Decision), r.Reason)
    {
        AuditSeq = auditSeq,
        RetryAfterSeconds = r.RetryAfterSeconds,
        RetryAt = r.RetryAt,
        ChallengeBasic = r.Status == 407,
    };
}
