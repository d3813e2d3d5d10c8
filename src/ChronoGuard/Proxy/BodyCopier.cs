using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using ChronoGuard.Http;
using ChronoGuard.Net;

namespace ChronoGuard.Proxy;

/// <summary>
/// Copies message bodies as they arrive, never buffering one whole: one loop, three framings (exactly
/// Content-Length bytes; chunked, validated as it streams so only the bytes before the first bad one
/// are relayed; up to EOF). Every byte goes out through a sink of the request scope, which accounts it:
/// bytes towards the upstream are egress, charged before they are sent.
/// </summary>
internal static class BodyCopier
{
    public static ValueTask<BodyResult> CopyExactAsync<TSink>(PipeReader from, TSink to, long length)
        where TSink : struct, IBodySink =>
        CopyAsync(from, to, new ExactFraming(length));

    public static ValueTask<BodyResult> CopyChunkedAsync<TSink>(PipeReader from, TSink to)
        where TSink : struct, IBodySink =>
        CopyAsync(from, to, new ChunkedFraming());

    /// <summary>A response framed by the close of the connection: it ends with the source, never complete.</summary>
    public static ValueTask<BodyResult> CopyToEndAsync(PipeReader from, ClientSink to) =>
        CopyAsync(from, to, new ExactFraming(long.MaxValue));

    [AsyncMethodBuilder(typeof(PooledValueTaskBuilder<>))]
    private static async ValueTask<BodyResult> CopyAsync<TSink, TFraming>(PipeReader from, TSink to, TFraming framing)
        where TSink : struct, IBodySink
        where TFraming : struct, IBodyFraming
    {
        while (!framing.IsDone)
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

            var error = framing.Take(buffer, out var validLength);
            var valid = buffer.Slice(0, validLength);
            var sent = await SendAsync(valid, to).ConfigureAwait(false);
            from.AdvanceTo(valid.End);
            if (!sent.IsComplete)
            {
                return sent;
            }

            if (error != ParseError.None)
            {
                return new BodyResult(BodyOutcome.BadFraming, error);
            }

            if (!framing.IsDone && result.IsCompleted)
            {
                return new BodyResult(BodyOutcome.SourceEnded);
            }
        }

        return BodyResult.Done;
    }

    [AsyncMethodBuilder(typeof(PooledValueTaskBuilder<>))]
    private static async ValueTask<BodyResult> SendAsync<TSink>(ReadOnlySequence<byte> data, TSink to)
        where TSink : struct, IBodySink
    {
        if (data.IsEmpty)
        {
            return BodyResult.Done;
        }

        try
        {
            // False only for egress: the sink charges before it sends, so a spent budget stops the
            // bytes that would cross it.
            return await to.SendAsync(data).ConfigureAwait(false) ? BodyResult.Done : new BodyResult(BodyOutcome.BudgetSpent);
        }
        catch (Exception ex) when (IsIoFailure(ex))
        {
            return new BodyResult(BodyOutcome.SinkFailed);
        }
    }

    internal static bool IsIoFailure(Exception ex) => ex is IOException or SocketException or ObjectDisposedException or InvalidOperationException;

    /// <summary>How much of what has arrived belongs to the body, and whether the body is over.</summary>
    private interface IBodyFraming
    {
        bool IsDone { get; }

        /// <summary>The body's bytes at the start of <paramref name="buffer"/>; an error stops at the first bad byte.</summary>
        ParseError Take(in ReadOnlySequence<byte> buffer, out long valid);
    }

    private struct ExactFraming(long remaining) : IBodyFraming
    {
        private long _remaining = remaining;

        public readonly bool IsDone => _remaining <= 0;

        public ParseError Take(in ReadOnlySequence<byte> buffer, out long valid)
        {
            valid = Math.Min(buffer.Length, _remaining);
            _remaining -= valid;
            return ParseError.None;
        }
    }

    private struct ChunkedFraming : IBodyFraming
    {
        private ChunkedScanner _scanner;

        public readonly bool IsDone => _scanner.IsDone;

        public ParseError Take(in ReadOnlySequence<byte> buffer, out long valid) => _scanner.Scan(buffer, out valid);
    }
}
