using System.Buffers;
using System.Net.Sockets;

namespace ChronoGuard.Proxy;

internal sealed partial class ProxyConnection
{
    // One receive's worth: large enough that a bulk tunnel moves 64 KiB per syscall pair, and rented
    // only while bytes are in flight, so an idle tunnel holds none.
    private const int TunnelBufferBytes = 64 * 1024;

    private string? _revokedReason;

    /// <summary>
    /// Copies both ways until both directions have ended. EOF one way is passed on as a FIN
    /// (half-close) and the other way goes on; an error either way aborts both.
    /// </summary>
    /// <returns>The close reason for the audit.</returns>
    private async Task<string> TunnelAsync()
    {
        if (_context.Hooks.RequiresSniCheck(_verdict) && !await CheckClientHelloAsync().ConfigureAwait(false))
        {
            return "sni_mismatch";
        }

        // Bytes the client sent right behind its CONNECT head are already in the pipe: relay them,
        // then drop the pipe and stream between the two sockets directly.
        if (!await FlushBufferedClientBytesAsync().ConfigureAwait(false))
        {
            return "reset";
        }

        CloseUpstreamPipe();
        var up = PumpAsync(_client, _upstream!, upstream: true);
        var down = PumpAsync(_upstream!, _client, upstream: false);
        await Task.WhenAll(up, down).ConfigureAwait(false);
        return (TimeoutKind)Volatile.Read(ref _timeout) switch
        {
            TimeoutKind.Idle => "idle_timeout",
            TimeoutKind.Drain => "drain",
            TimeoutKind.Revoked => _revokedReason ?? "policy_revoked",
            _ => up.Result && down.Result ? "closed" : "reset",
        };
    }

    /// <summary>
    /// Reads the client's first bytes without consuming them until the gate can judge them (a whole
    /// ClientHello), under the header timeout. False when refused: nothing reached the upstream.
    /// </summary>
    private async ValueTask<bool> CheckClientHelloAsync()
    {
        SetPhase(ConnectionPhase.ReadingHead);
        while (true)
        {
            var result = await _input.ReadAsync().ConfigureAwait(false);
            var buffer = result.Buffer;
            if (result.IsCanceled || IsAborted)
            {
                _input.AdvanceTo(buffer.Start, buffer.End);
                _verdict.Refusal = new Http.Refusal(408, "BLOCK", "sni_timeout");
                _context.Hooks.CheckClientHello(this, ref _verdict, buffer, complete: true);
                return false;
            }

            var verdict = _context.Hooks.CheckClientHello(this, ref _verdict, buffer, result.IsCompleted);
            if (verdict == SniVerdict.Pass)
            {
                // Relay what was judged now: the pipe will not offer examined bytes to TryRead again.
                await SocketSend.SendAllAsync(_upstream!, buffer).ConfigureAwait(false);
                Interlocked.Add(ref _bytesUp, buffer.Length);
                _input.AdvanceTo(buffer.End);
                if (result.IsCompleted)
                {
                    _upstream!.Shutdown(SocketShutdown.Send);
                }

                SetPhase(ConnectionPhase.Tunnel);
                return true;
            }

            _input.AdvanceTo(buffer.Start, buffer.End);

            if (verdict == SniVerdict.Refuse || result.IsCompleted)
            {
                return false;
            }
        }
    }

    private async ValueTask<bool> FlushBufferedClientBytesAsync()
    {
        if (!_input.TryRead(out var result))
        {
            return true;
        }

        var buffer = result.Buffer;
        try
        {
            if (!buffer.IsEmpty)
            {
                await SocketSend.SendAllAsync(_upstream!, buffer).ConfigureAwait(false);
                Interlocked.Add(ref _bytesUp, buffer.Length);
            }

            _input.AdvanceTo(buffer.End);
            if (result.IsCompleted)
            {
                _upstream!.Shutdown(SocketShutdown.Send);
            }

            return !result.IsCanceled;
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
            Abort(TimeoutKind.None);
            return false;
        }
    }

    /// <returns>True when this direction ended with an orderly EOF.</returns>
    private async Task<bool> PumpAsync(Socket from, Socket to, bool upstream)
    {
        try
        {
            while (true)
            {
                // Wait for readability with no buffer: this is where an idle tunnel spends its life.
                await from.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None).ConfigureAwait(false);
                var buffer = ArrayPool<byte>.Shared.Rent(TunnelBufferBytes);
                try
                {
                    var n = await from.ReceiveAsync(buffer.AsMemory(), SocketFlags.None).ConfigureAwait(false);
                    if (n == 0)
                    {
                        to.Shutdown(SocketShutdown.Send);
                        return true;
                    }

                    Touch();
                    await SocketSend.SendAllAsync(to, buffer.AsMemory(0, n)).ConfigureAwait(false);
                    if (upstream)
                    {
                        Interlocked.Add(ref _bytesUp, n);
                        if (!_context.Hooks.OnEgress(_verdict, n))
                        {
                            _revokedReason = "egress_budget";
                            Abort(TimeoutKind.Revoked);
                            return false;
                        }
                    }
                    else
                    {
                        Interlocked.Add(ref _bytesDown, n);
                    }
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
            Abort(TimeoutKind.None);
            return false;
        }
    }

    /// <summary>Closes a tunnel that policy no longer permits (reload, window end); from the heartbeat.</summary>
    internal void Revoke(string reason)
    {
        _revokedReason = reason;
        Abort(TimeoutKind.Revoked);
    }
}
