using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using ChronoGuard.Http;

namespace ChronoGuard.Proxy;

/// <summary>
/// One client connection: reads request heads from a <see cref="PipeReader"/>, then tunnels (CONNECT)
/// or forwards (absolute-form) until the client or a limit ends it. Nothing escapes
/// <see cref="Execute"/>: every failure ends in a refusal or a close.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "The connection owns its lifetime: RunAsync's finally disposes everything it holds.")]
internal sealed partial class ProxyConnection : IThreadPoolWorkItem
{
    private const int MaxHeaders = 128;
    private const int LingerMs = 1000;
    private const long LingerMaxBytes = 1 << 20;

    private readonly ProxyServer _server;
    private readonly ProxyContext _context;
    private readonly Socket _client;
    private readonly NetworkStream _clientStream;
    private readonly PipeReader _input;
    private HttpHead _head;
    private bool _headReturned;
    private readonly long _startedTicks;

    private int _phase;
    private long _phaseStart;
    private long _lastActivity;
    private int _timeout;
    private int _aborted;

    public ProxyConnection(ProxyServer server, Socket client, long id)
    {
        _server = server;
        _context = server.Context;
        _client = client;
        Id = id;
        Remote = client.RemoteEndPoint as IPEndPoint;
        _clientStream = new NetworkStream(client, ownsSocket: false);
        _input = PipeReader.Create(_clientStream, PipeOptionsFor.Reader);
        _head = HttpHeadPool.Rent(_context.Options.MaxHeaderBytes, MaxHeaders);
        _startedTicks = Environment.TickCount64;
        SetPhase(ConnectionPhase.ReadingHead);
    }

    public long Id { get; }

    public IPEndPoint? Remote { get; }

    internal ConnectionPhase Phase => (ConnectionPhase)Volatile.Read(ref _phase);

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
            // connection ends, the proxy goes on.
            ProxyLog.ConnectionFailed(_context.Logger, Id, ex);
        }
        finally
        {
            SetPhase(ConnectionPhase.Closed);
            CloseUpstream();
            await _input.CompleteAsync().ConfigureAwait(false);
            await _clientStream.DisposeAsync().ConfigureAwait(false);
            _client.Dispose();
            ReleaseHead();
            _response?.Dispose();
            if (_scratch is not null)
            {
                ArrayPool<byte>.Shared.Return(_scratch);
            }
            _server.OnClosed(this);
        }
    }

    private async Task ServeAsync()
    {
        var first = true;
        while (true)
        {
            SetPhase(first ? ConnectionPhase.ReadingHead : ConnectionPhase.Idle);
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

            SetPhase(ConnectionPhase.Busy);
            if (_head.IsConnect)
            {
                await ConnectAsync().ConfigureAwait(false);
                return;
            }

            if (!await ForwardAsync().ConfigureAwait(false) || _server.IsDraining)
            {
                return;
            }
        }
    }

    /// <summary>
    /// Reads one request head. Incomplete means the connection should just close (clean EOF between
    /// requests, idle or drain); a header timeout is reported as an error refusal here.
    /// </summary>
    private async ValueTask<(HeadStatus Status, ParseError Error)> ReadHeadAsync()
    {
        _head.Reset();
        while (true)
        {
            var result = await _input.ReadAsync().ConfigureAwait(false);
            var buffer = result.Buffer;
            if (result.IsCanceled || IsAborted)
            {
                var kind = (TimeoutKind)Volatile.Read(ref _timeout);
                if (kind == TimeoutKind.Header && !IsAborted)
                {
                    _input.AdvanceTo(buffer.Start, buffer.End);
                    await RefuseAsync(new Refusal(408, "DENY", "header_timeout"), audit: true).ConfigureAwait(false);
                }

                return (HeadStatus.Incomplete, ParseError.None);
            }

            if (!buffer.IsEmpty && Phase == ConnectionPhase.Idle)
            {
                // The next request has begun: from here its head must arrive within HeaderTimeoutMs.
                SetPhase(ConnectionPhase.ReadingHead);
            }

            var status = HeadReader.TryRead(buffer, _head, out var end, out var error);
            if (status == HeadStatus.Complete)
            {
                _input.AdvanceTo(end);
                error = HttpHeadParser.ParseRequest(_head);
                return error == ParseError.None ? (HeadStatus.Complete, error) : (HeadStatus.Error, error);
            }

            if (status == HeadStatus.Error)
            {
                _input.AdvanceTo(buffer.Start, buffer.End);
                return (HeadStatus.Error, error);
            }

            if (result.IsCompleted)
            {
                _input.AdvanceTo(buffer.End);
                return buffer.IsEmpty && _head.Length == 0
                    ? (HeadStatus.Incomplete, ParseError.None)
                    : (HeadStatus.Error, ParseError.TruncatedHead);
            }

            _input.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    /// <summary>Sends a refusal, audited unless the gate already audited it, then closes gracefully.</summary>
    private async Task RefuseAsync(Refusal refusal, bool audit)
    {
        if (audit)
        {
            _context.Hooks.OnProtocolRefusal(Remote, Id, ref refusal);
        }

        var buffer = ArrayPool<byte>.Shared.Rent(ResponseWriter.MaxRefusalBytes);
        try
        {
            var n = ResponseWriter.WriteRefusal(buffer, refusal);
            await SocketSend.SendAllAsync(_client, buffer.AsMemory(0, n)).ConfigureAwait(false);
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
            _client.Shutdown(SocketShutdown.Send);
        }
        catch (SocketException)
        {
            return;
        }

        SetPhase(ConnectionPhase.Lingering);
        long discarded = 0;
        while (discarded < LingerMaxBytes)
        {
            var result = await _input.ReadAsync().ConfigureAwait(false);
            discarded += result.Buffer.Length;
            _input.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted || result.IsCanceled)
            {
                return;
            }
        }
    }

    /// <summary>Gives the request head back once no more heads will be read on this connection.</summary>
    private void ReleaseHead()
    {
        if (!_headReturned)
        {
            _headReturned = true;
            HttpHeadPool.Return(_head);
        }
    }

    private bool IsAborted => Volatile.Read(ref _aborted) != 0;

    private void SetPhase(ConnectionPhase phase)
    {
        Volatile.Write(ref _phaseStart, Environment.TickCount64);
        Volatile.Write(ref _phase, (int)phase);
    }

    private void Touch() => Volatile.Write(ref _lastActivity, Environment.TickCount64);

    /// <summary>Called from the server's heartbeat: applies the timeout of the current phase.</summary>
    internal void OnHeartbeat(long now, bool draining, bool recheck)
    {
        if (recheck && Phase == ConnectionPhase.Tunnel && _context.Hooks.Recheck(this, _verdict) is { } reason)
        {
            Revoke(reason);
            return;
        }

        var options = _context.Options;
        var since = now - Volatile.Read(ref _phaseStart);
        switch (Phase)
        {
            case ConnectionPhase.ReadingHead when since > options.HeaderTimeoutMs:
                Fire(TimeoutKind.Header);
                break;
            case ConnectionPhase.ReadingHead when draining && !_headReturned && _head.Length == 0:
            case ConnectionPhase.Idle when draining:
                Fire(TimeoutKind.Drain);
                break;
            case ConnectionPhase.Idle when since > options.IdleTimeoutMs:
                Fire(TimeoutKind.Idle);
                break;
            case ConnectionPhase.Lingering when since > LingerMs:
                Fire(TimeoutKind.Linger);
                break;
            case ConnectionPhase.Busy or ConnectionPhase.Tunnel
                when now - Math.Max(Volatile.Read(ref _lastActivity), Volatile.Read(ref _phaseStart)) > options.IdleTimeoutMs:
                Abort(TimeoutKind.Idle);
                break;
        }
    }

    private void Fire(TimeoutKind kind)
    {
        if (Interlocked.CompareExchange(ref _timeout, (int)kind, 0) == 0)
        {
            _input.CancelPendingRead();
        }
    }

    /// <summary>Ends the connection now: both sockets close, so every pending read or send fails fast.</summary>
    internal void Abort(TimeoutKind reason)
    {
        if (Interlocked.Exchange(ref _aborted, 1) != 0)
        {
            return;
        }

        Interlocked.CompareExchange(ref _timeout, (int)reason, 0);
        _input.CancelPendingRead();
        _client.Dispose();
        AbortUpstream();
    }
}
