using System.Net.Sockets;
using System.Runtime.CompilerServices;

namespace ChronoGuard.Net;

/// <summary>
/// The accept step of a small server's loop (stats, admin): the next connection, with accept errors
/// (EMFILE under a descriptor flood) waited out by <see cref="AcceptBackoff"/> instead of spinning a
/// core: <c>failing</c> hears every failure and whether it starts an episode (the one to log),
/// <c>recovered</c> the end of a logged burst.
/// </summary>
internal static class BackedOffAccept
{
    /// <returns>The accepted socket, or null when the server is stopping (its token cancelled, or the listener closed).</returns>
    public static async ValueTask<Socket?> NextAsync(Socket listener, StrongBox<AcceptBackoff> backoff, TimeProvider time, Func<bool> stopping, Action<SocketError, bool> failing, Action<int> recovered, CancellationToken stop)
    {
        while (true)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptAsync(stop).ConfigureAwait(false);
            }
            catch (Exception ex) when (stopping() || ex is ObjectDisposedException or OperationCanceledException)
            {
                return null;
            }
            catch (SocketException ex)
            {
                var delay = backoff.Value.Fail(time.GetTimestamp() / Math.Max(1, time.TimestampFrequency / 1000), out var episodeStarted);
                failing(ex.SocketErrorCode, episodeStarted);

                try
                {
                    await Task.Delay(delay, time, stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return null;
                }

                continue;
            }

            if (backoff.Value.Succeed() is var failures and > 0)
            {
                recovered(failures);
            }

            return socket;
        }
    }
}
