using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using ChronoGuard.Http;
using ChronoGuard.Net;
using Microsoft.Extensions.Logging;

namespace ChronoGuard.Proxy;

/// <summary>
/// The listeners (HTTP proxy, agent-bound, SOCKS5): accepts on each, admits up to
/// <see cref="ProxyOptions.MaxConnections"/> across all, runs one <see cref="ClientConnection"/> per
/// client made by the listener's <see cref="IConnectionFactory"/>, enforces time limits and rechecks
/// from one heartbeat over every connection, and drains them all.
/// </summary>
internal sealed class ProxyServer : IAsyncDisposable
{
    // Over-capacity refusals linger briefly so the 503 is read before our close; bounded so a flood
    // cannot turn refusals into the unbounded queue that MaxConnections exists to prevent.
    private const int MaxLingeringRefusals = 256;

    private readonly ConcurrentDictionary<long, ClientConnection> _connections = new();
    private readonly TaskCompletionSource _allClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Socket?[] _sockets;
    private readonly Task[] _acceptLoops;

    // With one core (the process's affinity, which ProcessorCount follows) a hop to the thread pool
    // buys no parallelism and costs a futex wake and a context switch per connection, so a new
    // connection runs on the accept loop's thread up to its first wait. With more cores the hop lets
    // another core start it while this one accepts: serving inline there cost 18% of req/s on two
    // cores (perf/results/2026-12-04-cpu-per-tunnel.md).
    private readonly bool _serveInline;

    private ITimer? _heartbeat;
    private long _nextId;
    private int _active;
    private int _lingeringRefusals;
    private volatile bool _draining;

    /// <summary>One HTTP proxy listener on <see cref="ProxyOptions.Listen"/>.</summary>
    public ProxyServer(ProxyContext context)
        : this(context, [new ProxyListener(context.Options.Listen, "Proxy:Listen", new HttpConnectionFactory())])
    {
    }

    public ProxyServer(ProxyContext context, IReadOnlyList<ProxyListener> listeners)
    {
        Context = context;
        Listeners = listeners;
        _sockets = new Socket?[listeners.Count];
        _acceptLoops = new Task[listeners.Count];
        Array.Fill(_acceptLoops, Task.CompletedTask);
        LocalEndPoints = new IPEndPoint?[listeners.Count];
        _serveInline = context.Options.ServeInline ?? Environment.ProcessorCount == 1;
    }

    public ProxyContext Context { get; }

    public IReadOnlyList<ProxyListener> Listeners { get; }

    /// <summary>The first listener's address (the main proxy port).</summary>
    public IPEndPoint? LocalEndPoint => LocalEndPoints[0];

    /// <summary>Each listener's bound address, in <see cref="Listeners"/> order, once opened.</summary>
    public IPEndPoint?[] LocalEndPoints { get; }

    public int ActiveConnections => Volatile.Read(ref _active);

    /// <summary>
    /// Connections admitted at once: <see cref="ProxyOptions.MaxConnections"/>, or fewer when the
    /// descriptor limit leaves room for fewer (set before <see cref="Start"/>; see <see cref="FileDescriptors"/>).
    /// </summary>
    public int AdmissionLimit { get; set; } = int.MaxValue;

    /// <summary>Connections admitted since start.</summary>
    public long AcceptedTotal => Volatile.Read(ref _nextId);

    public bool IsDraining => _draining;

    public bool IsListening => _heartbeat is not null && !_draining;

    /// <summary>Binds one listener (a <see cref="SocketException"/> when it cannot); <see cref="Start"/> binds any not yet bound.</summary>
    public void Open(int index)
    {
        if (_sockets[index] is not null)
        {
            return;
        }

        var listener = Listeners[index];
        var socket = ListenSocket.Open(Endpoints.Parse(listener.Listen, listener.Setting), backlog: 4096);
        _sockets[index] = socket;
        LocalEndPoints[index] = (IPEndPoint)socket.LocalEndPoint!;
    }

    public void Start()
    {
        for (var i = 0; i < Listeners.Count; i++)
        {
            Open(i);
        }

        var period = TimeSpan.FromMilliseconds(Math.Clamp(Context.Options.HeaderTimeoutMs / 4, 50, 1000));
        _heartbeat = Context.Time.CreateTimer(static s => ((ProxyServer)s!).Heartbeat(), this, period, period);
        for (var i = 0; i < Listeners.Count; i++)
        {
            _acceptLoops[i] = AcceptLoopAsync(_sockets[i]!, Listeners[i].Factory);
        }
    }

    private async Task AcceptLoopAsync(Socket listener, IConnectionFactory factory)
    {
        var backoff = default(AcceptBackoff);
        while (!_draining)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptAsync().ConfigureAwait(false);
                backoff.Succeed();
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            catch (SocketException ex) when (_draining || ex.SocketErrorCode == SocketError.OperationAborted)
            {
                return;
            }
            catch (SocketException ex) when (ex.SocketErrorCode == SocketError.TooManyOpenSockets)
            {
                // Out of descriptors, the client waits in the backlog: lend the spare descriptor to take
                // it and answer 503, so that it is told, not left hanging; without a spare, back off.
                Context.Descriptors.Exhausted("accept");
                if (await RefuseWithSpareAsync(listener, factory).ConfigureAwait(false))
                {
                    continue;
                }

                await Task.Delay(backoff.Fail(Context.NowMs(), out _), Context.Time).ConfigureAwait(false);
                Context.Descriptors.ReturnSpare();
                continue;
            }
            catch (SocketException ex)
            {
                // ENOBUFS and friends: the listener is fine, this one accept is not; back off (5 ms
                // doubling to 1 s) and log once per episode, not once per failure or burst.
                var delay = backoff.Fail(Context.NowMs(), out var episodeStarted);
                if (episodeStarted)
                {
                    ProxyLog.AcceptFailed(Context.Logger, ex.SocketErrorCode.ToString());
                }

                await Task.Delay(delay, Context.Time).ConfigureAwait(false);
                continue;
            }

            socket.NoDelay = true;
            if (Interlocked.Increment(ref _active) > Math.Min(Context.Options.MaxConnections, AdmissionLimit))
            {
                Interlocked.Decrement(ref _active);
                RefuseOverCapacity(socket, factory);
                continue;
            }

            var connection = factory.Create(this, socket, Interlocked.Increment(ref _nextId));
            _connections[connection.Id] = connection;
            if (_serveInline)
            {
                connection.Execute();
            }
            else
            {
                ThreadPool.UnsafeQueueUserWorkItem(connection, preferLocal: false);
            }
        }
    }

    internal void OnClosed(ClientConnection connection)
    {
        _connections.TryRemove(connection.Id, out _);
        if (Interlocked.Decrement(ref _active) == 0 && _draining)
        {
            _allClosed.TrySetResult();
        }
    }

    /// <returns>False when there was no spare descriptor to lend, or the accept still failed.</returns>
    private async Task<bool> RefuseWithSpareAsync(Socket listener, IConnectionFactory factory)
    {
        if (!Context.Descriptors.ReleaseSpare())
        {
            return false;
        }

        Socket socket;
        try
        {
            socket = await listener.AcceptAsync().ConfigureAwait(false);
        }
        catch (SocketException)
        {
            Context.Descriptors.ReturnSpare();
            return false;
        }

        // It lingers like any refusal (closing on its unread request would RST the 503 away) and gives
        // the descriptor back as the spare when done; accepts meanwhile back off.
        var refusal = new Refusal(503, "DENY", ProxyReasons.DescriptorsExhausted);
        await Context.Gate.WaitForAuditRoomAsync().ConfigureAwait(false);
        _ = LingeringRefusalAsync(socket, factory, refusal with { AuditSeq = Context.Gate.RecordRefusal(new ConnectionInfo(0, socket.RemoteEndPoint as IPEndPoint), refusal) }, spare: true);
        return true;
    }

    private void RefuseOverCapacity(Socket socket, IConnectionFactory factory)
    {
        // The accept loop never waits on a full audit ring: this one refusal waits for room, parked.
        var room = Context.Gate.WaitForAuditRoomAsync();
        if (!room.IsCompleted)
        {
            _ = RefuseOverCapacityAsync(socket, factory, room);
            return;
        }

        room.GetAwaiter().GetResult();
        RefuseOverCapacityNow(socket, factory);
    }

    private async Task RefuseOverCapacityAsync(Socket socket, IConnectionFactory factory, ValueTask room)
    {
        await room.ConfigureAwait(false);
        RefuseOverCapacityNow(socket, factory);
    }

    private void RefuseOverCapacityNow(Socket socket, IConnectionFactory factory)
    {
        var refusal = new Refusal(503, "DENY", ProxyReasons.MaxConnections);
        refusal = refusal with { AuditSeq = Context.Gate.RecordRefusal(new ConnectionInfo(0, socket.RemoteEndPoint as IPEndPoint), refusal) };
        // Lingering refusals hold descriptors: when the descriptor limit sets admission, keep them
        // within the reserve it was derived with.
        var maxLingering = AdmissionLimit < Context.Options.MaxConnections ? FileDescriptors.Reserve / 4 : MaxLingeringRefusals;
        if (Volatile.Read(ref _lingeringRefusals) >= maxLingering)
        {
            SendAndClose(socket, factory, refusal);
            return;
        }

        Interlocked.Increment(ref _lingeringRefusals);
        _ = LingeringRefusalAsync(socket, factory, refusal, spare: false);
    }

    private static void SendAndClose(Socket socket, IConnectionFactory factory, Refusal refusal)
    {
        Span<byte> buffer = stackalloc byte[ResponseWriter.MaxRefusalBytes];
        var n = factory.WriteRefusal(buffer, refusal);
        try
        {
            socket.Blocking = false;
            socket.Send(buffer[..n], SocketFlags.None, out _);
        }
        catch (SocketException)
        {
        }
        catch (ObjectDisposedException)
        {
        }

        socket.Dispose();
    }

    /// <param name="spare">The socket holds the spare descriptor's place: return the spare when it closes.</param>
    private async Task LingeringRefusalAsync(Socket socket, IConnectionFactory factory, Refusal refusal, bool spare)
    {
        var buffer = new byte[ResponseWriter.MaxRefusalBytes];
        try
        {
            var n = factory.WriteRefusal(buffer, refusal);
            await SocketSend.SendAllAsync(socket, buffer.AsMemory(0, n)).ConfigureAwait(false);
            socket.Shutdown(SocketShutdown.Send);
            using var cts = new CancellationTokenSource(1000);
            while (await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token).ConfigureAwait(false) > 0)
            {
            }
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
        finally
        {
            socket.Dispose();
            if (spare)
            {
                Context.Descriptors.ReturnSpare();
            }
            else
            {
                Interlocked.Decrement(ref _lingeringRefusals);
            }
        }
    }

    private void Heartbeat()
    {
        var now = Context.NowMs();
        Context.Gate.Tick();
        var recheck = Context.Gate.NeedsRecheck();
        foreach (var pair in _connections)
        {
            pair.Value.OnHeartbeat(now, _draining, recheck);
        }

        Context.Upstreams.Sweep();
    }

    /// <summary>
    /// Stops accepting, closes idle keep-alive connections, lets requests and tunnels in flight go on
    /// for up to <see cref="ProxyOptions.DrainTimeoutMs"/>, then aborts whatever is left. Requests held
    /// for approval are answered 503 at once.
    /// </summary>
    public async Task DrainAsync(CancellationToken cancellationToken = default)
    {
        if (_draining)
        {
            return;
        }

        _draining = true;
        await StopAcceptingAsync().ConfigureAwait(false);
        // Held requests are answered 503 now (SPEC §9): nobody will approve them in this process.
        Context.Approvals?.Drain();
        var open = ActiveConnections;
        ProxyLog.Draining(Context.Logger, open, Context.Options.DrainTimeoutMs);
        if (open == 0)
        {
            _allClosed.TrySetResult();
        }

        Heartbeat();
        try
        {
            await _allClosed.Task.WaitAsync(TimeSpan.FromMilliseconds(Context.Options.DrainTimeoutMs), Context.Time, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is TimeoutException or OperationCanceledException)
        {
            ProxyLog.DrainAborting(Context.Logger, ActiveConnections);
            foreach (var pair in _connections)
            {
                pair.Value.Abort(TimeoutKind.Drain);
            }

            // Aborted connections finish promptly; bound the wait anyway so shutdown cannot hang.
            await _allClosed.Task.WaitAsync(TimeSpan.FromSeconds(2), Context.Time, CancellationToken.None).ContinueWith(static _ => { }, TaskScheduler.Default).ConfigureAwait(false);
        }
    }

    private async Task StopAcceptingAsync()
    {
        foreach (var socket in _sockets)
        {
            socket?.Dispose();
        }

        await Task.WhenAll(_acceptLoops).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_draining)
        {
            _draining = true;
            await StopAcceptingAsync().ConfigureAwait(false);
            foreach (var pair in _connections)
            {
                pair.Value.Abort(TimeoutKind.Drain);
            }
        }

        if (_heartbeat is not null)
        {
            await _heartbeat.DisposeAsync().ConfigureAwait(false);
        }

        Context.Upstreams.Dispose();
        Context.Descriptors.Dispose();
    }
}
