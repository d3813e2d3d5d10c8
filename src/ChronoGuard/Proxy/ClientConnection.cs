using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using ChronoGuard.Http;

namespace ChronoGuard.Proxy;

/// <summary>
/// The client side of one connection: reads request heads, hands each request to a
/// <see cref="RequestScope"/> and its front end (<see cref="TunnelRelay"/> or <see cref="HttpForwarder"/>),
/// refuses and lingers, and takes the heartbeat's timeouts. It holds no per-request buffer between
/// requests: the head is rented when the next request's first byte arrives and returned by the scope.
/// Nothing escapes <see cref="RunAsync"/>: every failure ends in a refusal or a close.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "RunAsync's finally disposes everything the connection holds.")]
internal sealed class ClientConnection : IThreadPoolWorkItem
{
    private const int MaxHeaders = 128;
    private const int LingerMs = 1000;
    private const long LingerMaxBytes = 1 << 20;

    private static readonly HttpHeadPool RequestHeads = new();

    private readonly ProxyServer _server;
    private readonly NetworkStream _stream;
    private HttpHead? _head;
    private Upstream? _upstream;
    private RequestScope? _current;
    private int _aborted;
    private string? _revokedReason;

    public ClientConnection(ProxyServer server, Socket socket, long id)
    {
        _server = server;
        Context = server.Context;
        Socket = socket;
        Info = new ConnectionInfo(id, socket.RemoteEndPoint as IPEndPoint);
        _stream = new NetworkStream(socket, ownsSocket: false);
        Input = PipeReader.Create(_stream, PipeOptionsFor.Reader);
        Clock = new ConnectionClock(Context);
        Clock.Enter(ConnectionPhase.ReadingHead);
    }

    public ProxyContext Context { get; }

    public ConnectionInfo Info { get; }

    public long Id => Info.Id;

    public Socket Socket { get; }

    public PipeReader Input { get; }

    public ConnectionClock Clock { get; }

    public bool IsAborted => Volatile.Read(ref _aborted) != 0;

    public bool IsDraining => _server.IsDraining;

    /// <summary>The upstream kept for this connection (keep-alive forwarding, or the tunnel's).</summary>
    public Upstream? Upstream => Volatile.Read(ref _upstream);

    /// <summary>Why the heartbeat revoked this connection's tunnel, when it did.</summary>
    public string? RevokedReason => Volatile.Read(ref _revokedReason);

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
            Clock.Enter(ConnectionPhase.Closed);
            DropUpstream();
            await Input.CompleteAsync().ConfigureAwait(false);
            await _stream.DisposeAsync().ConfigureAwait(false);
            Socket.Dispose();
            ReturnHead(TakeHead());
            _server.OnClosed(this);
        }
    }

    private async Task ServeAsync()
    {
        var first = true;
        while (true)
        {
            Clock.Enter(first ? ConnectionPhase.ReadingHead : ConnectionPhase.Idle);
            first = false;
            var (status, error) = await ReadHeadAsync().ConfigureAwait(false);
            if (status == HeadStatus.Incomplete)
            {
                return;
            }

            if (status == HeadStatus.Error)
            {
                await RefuseAsync(new Refusal(ParseErrors.StatusCode(error), "DENY", ParseErrors.Reason(error)), audit: true).ConfigureAwait(false);
                return;
            }

            Clock.Enter(ConnectionPhase.Busy);
            // A request writes a decision record and may write a close record: a full audit ring is
            // waited out here, parked, not in the ring's claim on a pool thread.
            await Context.Gate.WaitForAuditRoomAsync().ConfigureAwait(false);
            var scope = new RequestScope(this, TakeHead()!);
            Volatile.Write(ref _current, scope);
            var again = false;
            try
            {
                again = scope.IsConnect
                    ? await TunnelRelay.RunAsync(scope).ConfigureAwait(false)
                    : await HttpForwarder.RunAsync(scope).ConfigureAwait(false);
            }
            finally
            {
                Volatile.Write(ref _current, null);
                await Context.Gate.WaitForAuditRoomAsync().ConfigureAwait(false);
                scope.Exit();
            }

            if (!again || IsAborted || _server.IsDraining)
            {
                return;
            }
        }
    }

    /// <summary>
    /// Reads one request head. Incomplete means the connection should just close (clean EOF between
    /// requests, idle or drain); a header timeout is refused with 408 here.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<(HeadStatus Status, ParseError Error)> ReadHeadAsync()
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
                error = HttpHeadParser.ParseRequest(current);
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

    private HttpHead? TakeHead() => Interlocked.Exchange(ref _head, null);

    /// <summary>Gives a request head back to the pool (the scope's exit calls this).</summary>
    internal static void ReturnHead(HttpHead? head)
    {
        if (head is not null)
        {
            RequestHeads.Return(head);
        }
    }

    /// <summary>Sends a refusal, audited here unless its record already exists, then closes gracefully.</summary>
    public async Task RefuseAsync(Refusal refusal, bool audit)
    {
        if (audit)
        {
            await Context.Gate.WaitForAuditRoomAsync().ConfigureAwait(false);
            refusal = refusal with { AuditSeq = Context.Gate.RecordRefusal(Info, refusal) };
        }

        var buffer = ArrayPool<byte>.Shared.Rent(ResponseWriter.MaxRefusalBytes);
        try
        {
            var n = ResponseWriter.WriteRefusal(buffer, refusal);
            await SocketSend.SendAllAsync(Socket, buffer.AsMemory(0, n)).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
            return;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        await LingerAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// Closing with unread input makes the kernel send RST, which can destroy the response before the
    /// client reads it. So: FIN our side, then read and discard briefly until the client closes.
    /// </summary>
    private async Task LingerAsync()
    {
        try
        {
            Socket.Shutdown(SocketShutdown.Send);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
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

    /// <summary>Called from the server's heartbeat: rechecks tunnels and applies the timeout of the current phase.</summary>
    internal void OnHeartbeat(long now, bool draining, bool recheck)
    {
        if (recheck && Clock.Phase == ConnectionPhase.Tunnel && Volatile.Read(ref _current) is { } scope
            && Context.Gate.Recheck(scope.Decision) is { } reason)
        {
            Revoke(reason);
            return;
        }

        var head = Volatile.Read(ref _head);
        var due = Clock.Due(now, draining, head is null || head.Length == 0, Context.Options, LingerMs);
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

    /// <summary>Ends the connection now: both sockets close, so every pending read or send fails fast.</summary>
    internal void Abort(TimeoutKind reason)
    {
        if (Interlocked.Exchange(ref _aborted, 1) != 0)
        {
            return;
        }

        Clock.TryFire(reason);
        Input.CancelPendingRead();
        Socket.Dispose();
        Volatile.Read(ref _upstream)?.Abort();
    }

    /// <summary>Closes a tunnel that policy no longer permits (reload, window end, egress budget).</summary>
    internal void Revoke(string reason)
    {
        Interlocked.CompareExchange(ref _revokedReason, reason, null);
        Abort(TimeoutKind.Revoked);
    }
}
