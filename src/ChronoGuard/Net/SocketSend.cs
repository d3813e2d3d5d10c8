using System.Buffers;
using System.Net.Sockets;
using System.Runtime.CompilerServices;

namespace ChronoGuard.Net;

/// <summary>Whole sends on a raw socket, for the few writers that have no <see cref="Transport"/> (the stats listener, refusals before a connection exists).</summary>
internal static class SocketSend
{
    /// <summary>Sends every byte; a stream socket may accept fewer than offered per call.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public static async ValueTask SendAllAsync(Socket socket, ReadOnlyMemory<byte> data, CancellationToken ct = default)
    {
        while (!data.IsEmpty)
        {
            var n = await socket.SendAsync(data, SocketFlags.None, ct).ConfigureAwait(false);
            data = data[n..];
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public static async ValueTask SendAllAsync(Socket socket, ReadOnlySequence<byte> data, CancellationToken ct = default)
    {
        if (data.IsSingleSegment)
        {
            await SendAllAsync(socket, data.First, ct).ConfigureAwait(false);
            return;
        }

        foreach (var segment in data)
        {
            await SendAllAsync(socket, segment, ct).ConfigureAwait(false);
        }
    }
}
