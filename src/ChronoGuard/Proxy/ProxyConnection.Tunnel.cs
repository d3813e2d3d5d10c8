using System.IO.Pipelines;
using System.Net.Sockets;

namespace ChronoGuard.Proxy;

internal sealed partial class ProxyConnection
{
    /// <summary>
    /// Copies both ways until both directions have ended. EOF one way is passed on as a FIN
    /// (half-close) and the other way goes on; an error either way aborts both.
    /// </summary>
    /// <returns>The close reason for the audit.</returns>
    private async Task<string> TunnelAsync()
    {
        var up = PumpAsync(_input, _upstream!, upstream: true);
        var down = PumpAsync(_upstreamInput!, _client, upstream: false);
        await Task.WhenAll(up, down).ConfigureAwait(false);
        return (TimeoutKind)Volatile.Read(ref _timeout) switch
        {
            TimeoutKind.Idle => "idle_timeout",
            TimeoutKind.Drain => "drain",
            TimeoutKind.Revoked => _revokedReason ?? "policy_revoked",
            _ => up.Result && down.Result ? "closed" : "reset",
        };
    }

    private string? _revokedReason;

    /// <returns>True when this direction ended with an orderly EOF.</returns>
    private async Task<bool> PumpAsync(PipeReader from, Socket to, bool upstream)
    {
        try
        {
            while (true)
            {
                var result = await from.ReadAsync().ConfigureAwait(false);
                var buffer = result.Buffer;
                if (result.IsCanceled || IsAborted)
                {
                    Abort(TimeoutKind.None);
                    return false;
                }

                if (!buffer.IsEmpty)
                {
                    Touch();
                    await SocketSend.SendAllAsync(to, buffer).ConfigureAwait(false);
                    if (upstream)
                    {
                        Interlocked.Add(ref _bytesUp, buffer.Length);
                        if (!_context.Hooks.OnEgress(_verdict, buffer.Length))
                        {
                            _revokedReason = "egress_budget";
                            Abort(TimeoutKind.Revoked);
                            return false;
                        }
                    }
                    else
                    {
                        Interlocked.Add(ref _bytesDown, buffer.Length);
                    }
                }

                from.AdvanceTo(buffer.End);
                if (result.IsCompleted)
                {
                    to.Shutdown(SocketShutdown.Send);
                    return true;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or InvalidOperationException)
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
