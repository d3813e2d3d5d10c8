using System.IO.Pipelines;
using System.Net.Sockets;
using ChronoGuard.Http;

namespace ChronoGuard.Proxy;

/// <summary>
/// Copies message bodies as they arrive, never buffering one whole: exactly Content-Length bytes,
/// chunked framing validated as it streams (only the bytes before the first bad one are relayed), or
/// up to EOF. Every byte is accounted through the scope; bytes towards the upstream are egress.
/// </summary>
internal static class BodyCopier
{
    public static async ValueTask<BodyResult> CopyExactAsync(PipeReader from, Socket to, long length, RequestScope scope, bool upstream)
    {
        while (length > 0)
        {
            ReadResult result;
            try
            {
                result = await from.ReadAsync().ConfigureAwait(false);
            }
            catch (Exception ex) when (IsIoFailure(ex))
            {
                return new BodyResult(BodyOutcome.SourceFailed);
            }

            var buffer = result.Buffer;
            if (result.IsCanceled)
            {
                from.AdvanceTo(buffer.Start, buffer.End);
                return new BodyResult(BodyOutcome.Cancelled);
            }

            var chunk = buffer.Length > length ? buffer.Slice(0, length) : buffer;
            var sent = await SendAsync(chunk, to, scope, upstream).ConfigureAwait(false);
            from.AdvanceTo(chunk.End);
            if (!sent.IsComplete)
            {
                return sent;
            }

            length -= chunk.Length;
            if (length > 0 && result.IsCompleted)
            {
                return new BodyResult(BodyOutcome.SourceEnded);
            }
        }

        return BodyResult.Done;
    }

    public static async ValueTask<BodyResult> CopyChunkedAsync(PipeReader from, Socket to, RequestScope scope, bool upstream)
    {
        var scanner = default(ChunkedScanner);
        while (!scanner.IsDone)
        {
            ReadResult result;
            try
            {
                result = await from.ReadAsync().ConfigureAwait(false);
            }
            catch (Exception ex) when (IsIoFailure(ex))
            {
                return new BodyResult(BodyOutcome.SourceFailed);
            }

            var buffer = result.Buffer;
            if (result.IsCanceled)
            {
                from.AdvanceTo(buffer.Start, buffer.End);
                return new BodyResult(BodyOutcome.Cancelled);
            }

            var error = scanner.Scan(buffer, out var consumed);
            var valid = buffer.Slice(0, consumed);
            var sent = await SendAsync(valid, to, scope, upstream).ConfigureAwait(false);
            from.AdvanceTo(valid.End);
            if (!sent.IsComplete)
            {
                return sent;
            }

            if (error != ParseError.None)
            {
                return new BodyResult(BodyOutcome.BadFraming, error);
            }

            if (!scanner.IsDone && result.IsCompleted)
            {
                return new BodyResult(BodyOutcome.SourceEnded);
            }
        }

        return BodyResult.Done;
    }

    /// <summary>A response framed by the close of the connection.</summary>
    public static async ValueTask<BodyResult> CopyToEndAsync(PipeReader from, Socket to, RequestScope scope)
    {
        while (true)
        {
            ReadResult result;
            try
            {
                result = await from.ReadAsync().ConfigureAwait(false);
            }
            catch (Exception ex) when (IsIoFailure(ex))
            {
                return new BodyResult(BodyOutcome.SourceFailed);
            }

            var buffer = result.Buffer;
            var sent = await SendAsync(buffer, to, scope, upstream: false).ConfigureAwait(false);
            from.AdvanceTo(buffer.End);
            if (!sent.IsComplete)
            {
                return sent;
            }

            if (result.IsCompleted || result.IsCanceled)
            {
                return result.IsCanceled ? new BodyResult(BodyOutcome.Cancelled) : new BodyResult(BodyOutcome.SourceEnded);
            }
        }
    }

    private static async ValueTask<BodyResult> SendAsync(System.Buffers.ReadOnlySequence<byte> data, Socket to, RequestScope scope, bool upstream)
    {
        if (data.IsEmpty)
        {
            return BodyResult.Done;
        }

        // Charged before it is sent, so a spent budget stops the bytes that would cross it.
        if (upstream && !scope.ChargeUpstream(data.Length))
        {
            return new BodyResult(BodyOutcome.BudgetSpent);
        }

        try
        {
            await SocketSend.SendAllAsync(to, data).ConfigureAwait(false);
        }
        catch (Exception ex) when (IsIoFailure(ex))
        {
            return new BodyResult(BodyOutcome.SinkFailed);
        }

        if (!upstream)
        {
            scope.SentDownstream(data.Length);
        }

        return BodyResult.Done;
    }

    internal static bool IsIoFailure(Exception ex) => ex is IOException or SocketException or ObjectDisposedException or InvalidOperationException;
}
