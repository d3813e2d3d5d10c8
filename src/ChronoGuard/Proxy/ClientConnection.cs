using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using ChronoGuard.Http;
using ChronoGuard.Net;

namespace ChronoGuard.Proxy;

/// <summary>
/// The client side of one accepted connection, whatever its protocol: its transport, its clock and
/// timeouts, the upstream it keeps, the request in flight, and its end. A protocol adds how requests
/// are read (<see cref="ServeAsync"/>) and how it answers (<see cref="WriteRefusalAsync"/>,
/// <see cref="SendEstablishedAsync"/>); everything a request holds is held by its
/// <see cref="RequestScope"/>, run here (<see cref="RunScopeAsync"/>) with its exit in one <c>finally</c>.
/// Nothing escapes <see cref="RunAsync"/>: every failure ends in a refusal or a close.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "RunAsync's finally disposes everything the connection holds.")]
internal abstract class ClientConnection : IThreadPoolWorkItem
{
    private const int LingerMs = 1000;
    private const long LingerMaxBytes = 1 << 20;
    private const int MaxHeaders = 128;

    private static readonly HttpHeadPool RequestHeads = new();

    private readonly ProxyServer _server;
    private Upstream? _upstream;
    private RequestScope? _current;
    private HttpHead? _head;
    private int _aborted;
    private string? _revokedReason;

    protected ClientConnection(ProxyServer server, Socket socket, long id, string? listenerAgent)
    {
        _server = server;
        Context = server.Context;
        Transport = new Transport(socket);
        Info = new ConnectionInfo(id, socket.RemoteEndPoint as IPEndPoint);
        ListenerAgent = listenerAgent;
        Clock = new ConnectionClock(Context);
        Clock.Enter(ConnectionPhase.ReadingHead);
    }

    public ProxyContext Context { get; }

    public ConnectionInfo Info { get; }

    public long Id => Info.Id;

    /// <summary>The client's bytes: every read and send of this connection goes through it.</summary>
    public Transport Transport { get; }

    public PipeReader Input => Transport.Input;

    public ConnectionClock Clock { get; }

    /// <summary>The agent this connection's listener is bound to (SPEC §8), or null.</summary>
    public string? ListenerAgent { get; }

    public bool IsAborted => Volatile.Read(ref _aborted) != 0;

    public bool IsDraining => _server.IsDraining;

    /// <summary>The upstream kept for this connection (keep-alive forwarding, or the tunnel's).</summary>
    public Upstream? Upstream => Volatile.Read(ref _upstream);

    /// <summary>Why the heartbeat revoked this connection's request, when it did.</summary>
    public string? RevokedReason => Volatile.Read(ref _revokedReason);

    /// <summary>
    /// Where a redirected client was going (SPEC §10): its requests are dialed there and nowhere else.
    /// Null for front ends whose client names its destination (the proxy port, SOCKS).
    /// </summary>
    public virtual IPEndPoint? OriginalDestination => null;

    /// <summary>
    /// The addresses a decided request of this connection may dial, judged by the guard: the decided
    /// host resolved once (<see cref="GuardedAddresses.ResolveAsync"/>), unless the front end knows
    /// the destination already and binds the name to it.
    /// </summary>
    public virtual ValueTask<(ConnectOutcome Outcome, GuardedAddresses Addresses)> ResolveAsync(RequestScope scope) => GuardedAddresses.ResolveAsync(scope);

    /// <summary>Whether a request head has started arriving and is not complete (drain waits for it).</summary>
    protected virtual bool HeadStarted => Volatile.Read(ref _head) is { Length: > 0 };

    /// <summary>
    /// The client's transport carries TLS the proxy terminated (SPEC §7): from here the client speaks
    /// HTTP inside it, so refusals are HTTP responses whatever protocol opened the tunnel.
    /// </summary>
    public bool Inspecting { get; private set; }

    public void Execute() => _ = RunAsync();

    private async Task RunAsync()
    {
        try
        {
            await ServeAsync().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // Socket resets, disposed streams after an abort, and anything unforeseen: this one
            // connection ends (its scope has already given back what the request held), the proxy goes on.
            ProxyLog.ConnectionFailed(Context.Logger, Id, ex);
        }
        finally
        {
            if (Inspecting && !IsAborted)
            {
                // An inspected client is told the end in TLS (close_notify), as an origin would.
                await Transport.ShutdownSendAsync().ConfigureAwait(false);
            }

            Clock.Enter(ConnectionPhase.Closed);
            DropUpstream();
            await Input.CompleteAsync().ConfigureAwait(false);
            Transport.Dispose();
            OnClosed();
            _server.OnClosed(this);
        }
    }

    /// <summary>The protocol: reads requests, decides each through a scope and runs it with <see cref="RunScopeAsync"/>.</summary>
    protected abstract Task ServeAsync();

    /// <summary>What the connection itself still holds when it ends (a head being read).</summary>
    protected virtual void OnClosed() => ReturnHead(TakeHead());

    /// <summary>
    /// Reads one HTTP request head: a proxy request (absolute-form or CONNECT), or with
    /// <paramref name="originForm"/> a request inside an inspected tunnel. Incomplete means the
    /// connection should just close (clean EOF between requests, idle or drain); a header timeout is
    /// refused with 408 here. The head is rented when the request's first byte arrives (an idle
    /// connection holds none) and taken with <see cref="TakeHead"/>.
    /// </summary>
    [AsyncMethodBuilder(typeof(PooledValueTaskBuilder<>))]
    internal async ValueTask<(HeadStatus Status, ParseError Error)> ReadRequestHeadAsync(bool originForm)
    {
        while (true)
        {
            var result = await Input.ReadAsync().ConfigureAwait(false);
            var buffer = result.Buffer;
            if (result.IsCanceled || IsAborted)
            {
                if (Clock.Fired == TimeoutKind.Header && !IsAborted)
                {
                    Input.AdvanceTo(buffer.Start, buffer.End);
                    await RefuseAsync(new Refusal(408, "DENY", "header_timeout"), audit: true).ConfigureAwait(false);
                }

                return (HeadStatus.Incomplete, ParseError.None);
            }

            if (!buffer.IsEmpty && _head is null)
            {
                // The next request has begun: rent its head now (an idle connection holds none), and
                // from here its head must arrive within HeaderTimeoutMs. A new connection's first head
                // is timed from the accept, so a byte every HeaderTimeoutMs cannot stretch it.
                if (Clock.Phase == ConnectionPhase.Idle)
                {
                    Clock.Enter(ConnectionPhase.ReadingHead);
                }

                var head = RequestHeads.Rent(Context.Options.MaxHeaderBytes, MaxHeaders);
                Volatile.Write(ref _head, head);
            }

            if (_head is not { } current)
            {
                Input.AdvanceTo(buffer.End);
                return (HeadStatus.Incomplete, ParseError.None);
            }

            var status = HeadReader.TryRead(buffer, current, out var end, out var error);
            if (status == HeadStatus.Complete)
            {
                Input.AdvanceTo(end);
                error = HttpHeadParser.ParseRequest(current, originForm);
                return error == ParseError.None ? (HeadStatus.Complete, error) : (HeadStatus.Error, error);
            }

            if (status == HeadStatus.Error)
            {
                Input.AdvanceTo(buffer.Start, buffer.End);
                return (HeadStatus.Error, error);
            }

            if (result.IsCompleted)
            {
                Input.AdvanceTo(buffer.End);
                return (HeadStatus.Error, ParseError.TruncatedHead);
            }

            Input.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    /// <summary>
    /// The next request of a connection that carries several (the proxy port, a redirected plain-HTTP
    /// connection, an inspected tunnel): its head, taken (the scope made for it returns it), or null
    /// when the connection ends here (EOF between requests, idle, drain, a timeout, or a malformed
    /// head, which has been refused and recorded).
    /// </summary>
    [AsyncMethodBuilder(typeof(PooledValueTaskBuilder<>))]
    internal async ValueTask<HttpHead?> NextRequestHeadAsync(bool first, bool originForm)
    {
        Clock.Enter(first ? ConnectionPhase.ReadingHead : ConnectionPhase.Idle);
        var (status, error) = await ReadRequestHeadAsync(originForm).ConfigureAwait(false);
        if (status == HeadStatus.Incomplete)
        {
            return null;
        }

        if (status == HeadStatus.Error)
        {
            await RefuseAsync(new Refusal(ParseErrors.StatusCode(error), "DENY", ParseErrors.Reason(error)), audit: true).ConfigureAwait(false);
            return null;
        }

        Clock.Enter(ConnectionPhase.Busy);
        return TakeHead()!;
    }

    /// <summary>The head <see cref="ReadRequestHeadAsync"/> read; the scope made for it returns it.</summary>
    internal HttpHead? TakeHead() => Interlocked.Exchange(ref _head, null);

    /// <summary>Gives a request head back to the pool (the scope's exit calls this).</summary>
    internal static void ReturnHead(HttpHead? head)
    {
        if (head is not null)
        {
            RequestHeads.Return(head);
        }
    }

    /// <summary>
    /// Runs one decided request to its end: the tunnel sequence or the forwarding exchange, then the
    /// scope's exit, whatever happened. The heartbeat sees the scope while it runs (recheck, revoke).
    /// </summary>
    /// <returns>True when the connection may carry another request.</returns>
    /// <remarks>
    /// Scopes nest: an inspected tunnel runs each inner request through here, and while it runs the
    /// heartbeat rechecks the inner request (its own method, path and rules); the tunnel is in flight
    /// again when it ends.
    /// </remarks>
    [AsyncMethodBuilder(typeof(PooledValueTaskBuilder<>))]
    internal async ValueTask<bool> RunScopeAsync(RequestScope scope)
    {
        var outer = Volatile.Read(ref _current);
        Volatile.Write(ref _current, scope);
        try
        {
            // A request writes a decision record and may write a close record: a full audit ring is
            // waited out here, parked, not in the ring's claim on a pool thread. Inside the try: the
            // decided scope already holds what its exit gives back.
            await Context.Gate.WaitForAuditRoomAsync().ConfigureAwait(false);
            while (scope.AwaitsApproval)
            {
                // Every front end's request waits here and nowhere else: after the wait it is an
                // ordinary decided request (allowed by the grant, or refused) with its one record.
                // It waits again only when a reload closed its approval and the new policy asks too.
                await scope.HoldAsync().ConfigureAwait(false);
            }

            return scope.IsTunnel
                ? await TunnelRelay.RunAsync(scope).ConfigureAwait(false)
                : await HttpForwarder.RunAsync(scope).ConfigureAwait(false);
        }
        finally
        {
            Volatile.Write(ref _current, outer);
            await Context.Gate.WaitForAuditRoomAsync().ConfigureAwait(false);
            scope.Exit();
        }
    }

    /// <summary>
    /// Sends a refusal in this protocol's words, audited here unless its record already exists, then
    /// closes gracefully; with <paramref name="keepOpen"/> (an inspected request refused by policy,
    /// whose connection may carry the next one) the response says so and the connection stays.
    /// </summary>
    public async Task RefuseAsync(Refusal refusal, bool audit, bool keepOpen = false)
    {
        if (audit)
        {
            await Context.Gate.WaitForAuditRoomAsync().ConfigureAwait(false);
            refusal = refusal with { AuditSeq = Context.Gate.RecordRefusal(Info, refusal) };
        }

        try
        {
            if (Inspecting)
            {
                await WriteHttpRefusalAsync(refusal with { KeepOpen = keepOpen, ChallengeBasic = false }).ConfigureAwait(false);
            }
            else
            {
                await WriteRefusalAsync(refusal).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
            return;
        }

        if (!keepOpen)
        {
            await LingerAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Writes a refusal as this protocol says it (HTTP status and headers, a SOCKS reply code).</summary>
    protected abstract ValueTask WriteRefusalAsync(Refusal refusal);

    /// <summary>A refusal as an HTTP response (the proxy protocol's, and every request's inside an inspected tunnel).</summary>
    protected async ValueTask WriteHttpRefusalAsync(Refusal refusal)
    {
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(ResponseWriter.MaxRefusalBytes);
        try
        {
            var n = ResponseWriter.WriteRefusal(buffer, refusal);
            await Transport.SendAsync(buffer.AsMemory(0, n)).ConfigureAwait(false);
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// Puts the TLS server stream <paramref name="layer"/> makes under the client's transport (SPEC §7;
    /// the caller then runs the handshake on it): from here requests and refusals are HTTP inside it.
    /// Bytes the client sent before (held by the pipe) are read through the layer.
    /// </summary>
    internal void BeginInspection(Func<Stream, Stream> layer)
    {
        Transport.Layer(layer);
        Inspecting = true;
    }

    /// <summary>
    /// Tells the client its tunnel is open (HTTP <c>200 Connection established</c>, SOCKS reply
    /// <c>0x00</c>); <paramref name="dialed"/> is the address the tunnel goes to (or is about to).
    /// </summary>
    public abstract ValueTask SendEstablishedAsync(IPEndPoint dialed);

    /// <summary>
    /// Closing with unread input makes the kernel send RST, which can destroy the response before the
    /// client reads it. So: FIN our side, then read and discard briefly until the client closes.
    /// </summary>
    private async Task LingerAsync()
    {
        if (IsAborted || !await Transport.ShutdownSendAsync().ConfigureAwait(false))
        {
            return;
        }

        Clock.Enter(ConnectionPhase.Lingering);
        long discarded = 0;
        while (discarded < LingerMaxBytes)
        {
            var result = await Input.ReadAsync().ConfigureAwait(false);
            discarded += result.Buffer.Length;
            Input.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted || result.IsCanceled)
            {
                return;
            }
        }
    }

    /// <summary>Keeps <paramref name="upstream"/> as this connection's; aborts it at once if the connection already was.</summary>
    public void SetUpstream(Upstream upstream)
    {
        Interlocked.Exchange(ref _upstream, upstream)?.Dispose();
        if (IsAborted)
        {
            upstream.Abort();
        }
    }

    public void DropUpstream() => Interlocked.Exchange(ref _upstream, null)?.Dispose();

    /// <summary>Takes the kept upstream away from this connection without closing it (to pool it); null if none.</summary>
    public Upstream? TakeUpstream() => IsAborted ? null : Interlocked.Exchange(ref _upstream, null);

    /// <summary>
    /// Called from the server's heartbeat: rechecks the request in flight once bytes may flow (a tunnel,
    /// or a forwarded response still streaming: revocation goes by what the request holds, not by the
    /// phase), then applies the timeout of the current phase.
    /// </summary>
    internal void OnHeartbeat(long now, bool draining, bool recheck)
    {
        if (recheck && Volatile.Read(ref _current) is { IsEstablished: true } scope
            && scope.Recheck() is { } reason)
        {
            Revoke(reason);
            return;
        }

        var due = Clock.Due(now, draining, !HeadStarted, Context.Options, LingerMs);
        switch (due)
        {
            case TimeoutKind.None:
                return;
            case TimeoutKind.Idle when Clock.Phase is ConnectionPhase.Busy or ConnectionPhase.Tunnel or ConnectionPhase.ReadingBody:
                Abort(TimeoutKind.Idle);
                return;
            default:
                // Header, idle keep-alive, drain, linger, body: wake the one pending client read; the
                // code awaiting it sees the cancellation and the first timeout that fired, and ends in
                // order. Cancelled on every beat that finds one due, not only the first: a refusal
                // sent for one timeout lingers, and its linger must still end.
                Clock.TryFire(due);
                Input.CancelPendingRead();
                return;
        }
    }

    /// <summary>Ends the connection now: both sides close, so every pending read or send fails fast.</summary>
    internal void Abort(TimeoutKind reason)
    {
        if (Interlocked.Exchange(ref _aborted, 1) != 0)
        {
            return;
        }

        Clock.TryFire(reason);
        Transport.Abort();
        Volatile.Read(ref _upstream)?.Abort();
    }

    /// <summary>Closes a request that policy no longer permits (reload, window end, egress budget).</summary>
    internal void Revoke(string reason)
    {
        Interlocked.CompareExchange(ref _revokedReason, reason, null);
        Abort(TimeoutKind.Revoked);
    }
}
