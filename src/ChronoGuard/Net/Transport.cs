using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;

namespace ChronoGuard.Net;

/// <summary>
/// One side of a request as bytes: a connected socket and the stream over it. Both the client side and
/// the upstream side of every front end read and write only through this, never through the socket, so
/// a layer such as TLS (inspection, SPEC §7) can sit underneath (<see cref="Layer"/>) without the front
/// ends, the body copier or the tunnel relay knowing. The socket stays here for what only a socket can
/// do: its addresses, a half close, and an abort that any thread may call.
/// </summary>
internal sealed class Transport : IDisposable
{
    private readonly Socket _socket;
    private Stream _stream;
    private PipeReader? _input;
    private int _disposed;
    private int _sendShut;

    private readonly StreamPipeReaderOptions _readerOptions;

    public Transport(Socket socket, StreamPipeReaderOptions? readerOptions = null)
    {
        _socket = socket;
        _readerOptions = readerOptions ?? PipeOptionsFor.Reader;
        _stream = new NetworkStream(socket, ownsSocket: false);
    }

    public IPEndPoint? RemoteEndPoint => _socket.RemoteEndPoint as IPEndPoint;

    public IPEndPoint? LocalEndPoint => _socket.LocalEndPoint as IPEndPoint;

    /// <summary>
    /// A pipe over the stream, made on first use: head parsing and body copies read through it. With
    /// zero-byte reads an idle pipe holds no buffer (<see cref="PipeOptionsFor.Reader"/>).
    /// </summary>
    public PipeReader Input => Volatile.Read(ref _input) ?? CreateInput();

    public bool HasInput => _input is not null;

    // The heartbeat may touch Input (to cancel a read) while the connection's task makes it: one wins.
    private PipeReader CreateInput()
    {
        var created = PipeReader.Create(_stream, _readerOptions);
        return Interlocked.CompareExchange(ref _input, created, null) ?? created;
    }

    /// <summary>
    /// Puts a layer under everything above (the stream it returns wraps the current one). When the pipe
    /// has already read (a CONNECT head was parsed through it), what it buffered and nobody consumed,
    /// such as a ClientHello sent right behind the head, is read first through the layer, and the next
    /// use of <see cref="Input"/> makes a new pipe above the layer. No read may be pending.
    /// </summary>
    public void Layer(Func<Stream, Stream> wrap)
    {
        var below = _stream;
        if (Interlocked.Exchange(ref _input, null) is { } input)
        {
            if (input.TryRead(out var held))
            {
                var buffered = held.Buffer;
                if (!buffered.IsEmpty)
                {
                    // Only bytes that arrived early are copied: usually none (clients wait for the 200).
                    below = new PrefixedStream(buffered.ToArray(), below);
                }

                input.AdvanceTo(buffered.End);
            }

            // The pipe leaves the stream open (PipeOptionsFor.Reader): only the pipe ends here.
            input.Complete();
        }

        _stream = wrap(below);
    }

    /// <summary>Sends every byte (the stream loops over partial sends).</summary>
    public ValueTask SendAsync(ReadOnlyMemory<byte> data, CancellationToken ct = default) => _stream.WriteAsync(data, ct);

    public async ValueTask SendAsync(ReadOnlySequence<byte> data, CancellationToken ct = default)
    {
        if (data.IsSingleSegment)
        {
            await _stream.WriteAsync(data.First, ct).ConfigureAwait(false);
            return;
        }

        foreach (var segment in data)
        {
            await _stream.WriteAsync(segment, ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Reads straight from the stream, past the pipe: for relaying once the pipe has handed over what it
    /// buffered. An empty <paramref name="buffer"/> waits for readability without holding a buffer.
    /// </summary>
    public ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken ct = default) => _stream.ReadAsync(buffer, ct);

    /// <summary>
    /// Waits until the peer sends a byte (or its FIN, or a reset) or <paramref name="silence"/> passes on
    /// <paramref name="time"/>; false only when nothing at all has arrived by the time the wait ends. A
    /// timer that fires late on a busy machine, after the first bytes came but before their wake-up ran,
    /// therefore never calls a peer silent that has spoken. Holds no buffer while it waits.
    /// </summary>
    public async ValueTask<bool> WaitForBytesAsync(TimeSpan silence, TimeProvider time)
    {
        using var wait = new CancellationTokenSource(silence, time);
        try
        {
            await ReceiveAsync(Memory<byte>.Empty, wait.Token).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException)
        {
            return !IsQuiet();
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
            // Reset or aborted: the caller's next read sees it.
            return true;
        }
    }

    /// <summary>
    /// Whether an idle connection has nothing to read: no byte, no FIN, no reset (one poll, no read). An
    /// idle upstream that has something (the origin closed it, or sent bytes nobody asked for) must not
    /// carry the next request.
    /// </summary>
    public bool IsQuiet()
    {
        try
        {
            return !_socket.Poll(0, SelectMode.SelectRead);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            return false;
        }
    }

    /// <summary>Whether bytes (not only a FIN) wait to be read on the socket (no read).</summary>
    public bool HasBytes()
    {
        try
        {
            return _socket.Available > 0;
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            return false;
        }
    }

    /// <summary>Our side is done sending (FIN); the peer may still send. False when the connection is already gone.</summary>
    /// <summary>
    /// Ends this side's sending: over TLS (an inspected client, a TLS upstream) first the
    /// <c>close_notify</c> alert, so the peer can tell the end from a truncation, then the FIN. The
    /// alert is a few bytes; a peer that reads nothing cannot hold it past <see cref="CloseNotifyWait"/>.
    /// </summary>
    public async ValueTask<bool> ShutdownSendAsync()
    {
        // Once: a refusal's linger and the connection's end both close the sending side.
        if (Interlocked.Exchange(ref _sendShut, 1) != 0)
        {
            return false;
        }

        if (_stream is System.Net.Security.SslStream tls)
        {
            try
            {
                await tls.ShutdownAsync().WaitAsync(CloseNotifyWait).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or InvalidOperationException or TimeoutException or System.Security.Authentication.AuthenticationException)
            {
                // The handshake never finished, the peer is gone, or it reads nothing: the FIN still goes.
            }
        }

        return ShutdownSend();
    }

    private static readonly TimeSpan CloseNotifyWait = TimeSpan.FromSeconds(1);

    public bool ShutdownSend()
    {
        try
        {
            _socket.Shutdown(SocketShutdown.Send);
            return true;
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            return false;
        }
    }

    /// <summary>From any thread: every pending read and send on this transport fails at once.</summary>
    /// <summary>The close that follows sends a reset, as a refused connection would (SO_LINGER with a zero timeout).</summary>
    public void ResetOnClose()
    {
        try
        {
            _socket.LingerState = new LingerOption(true, 0);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // Already gone: nothing left to reset.
        }
    }

    public void Abort()
    {
        _input?.CancelPendingRead();
        _socket.Dispose();
    }

    /// <summary>The pipe is not needed any more (a tunnel relays the stream directly); the stream stays.</summary>
    public void DropInput() => Interlocked.Exchange(ref _input, null)?.Complete();

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _input?.Complete();
        _stream.Dispose();
        _socket.Dispose();
    }
}
