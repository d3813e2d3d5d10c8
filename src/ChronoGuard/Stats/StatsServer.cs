using System.Runtime.CompilerServices;
using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Text;
using ChronoGuard.Net;
using Microsoft.Extensions.Logging;

namespace ChronoGuard.Stats;

/// <summary>
/// The stats listener (SPEC §6): a deliberately tiny HTTP/1.1 server, GET only, one response per
/// connection. Scrapes are rare and small, so simplicity beats keep-alive here; it shares no code
/// path with the proxy so a flood on one cannot starve the other.
/// </summary>
internal sealed class StatsServer(ILogger logger, TimeProvider time) : IAsyncDisposable
{
    private const int MaxRequestBytes = 8 * 1024;

    private readonly Dictionary<string, StatsRoute> _routes = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stop = new();
    private Socket? _listener;
    private Task _acceptLoop = Task.CompletedTask;
    private volatile bool _stopping;
    private long _acceptFailures;

    /// <summary>Accepts that failed with a socket error since start (each one waited out its backoff).</summary>
    public long AcceptFailures => Interlocked.Read(ref _acceptFailures);

    public IPEndPoint? LocalEndPoint { get; private set; }

    /// <summary>Registers a route before <see cref="Start"/>; the handler writes the body and returns status and content type.</summary>
    public void Map(string path, StatsRoute handler) => _routes[path] = handler;

    public void Start(string listen) => Start(ListenSocket.Open(Endpoints.Parse(listen, "Stats:Listen"), backlog: 128));

    /// <summary>Serves on a socket that is already listening (the server owns it from here).</summary>
    public void Start(Socket listener)
    {
        _listener = listener;
        LocalEndPoint = (IPEndPoint)listener.LocalEndPoint!;
        _acceptLoop = AcceptLoopAsync(listener);
    }

    private async Task AcceptLoopAsync(Socket listener)
    {
        var backoff = new StrongBox<AcceptBackoff>();
        while (!_stopping)
        {
            if (await BackedOffAccept.NextAsync(listener, backoff, time, () => _stopping, (error, episodeStarted) =>
                {
                    // Without a pause this loop spun a core for as long as the error lasted (EMFILE under an
                    // fd flood); one log line per episode, not one per attempt or burst.
                    Interlocked.Increment(ref _acceptFailures);
                    if (episodeStarted)
                    {
                        StatsLog.AcceptFailing(logger, error.ToString());
                    }
                }, failures => StatsLog.AcceptRecovered(logger, failures), _stop.Token).ConfigureAwait(false) is not { } socket)
            {
                return;
            }

            _ = ServeAsync(socket);
        }
    }

    private async Task ServeAsync(Socket socket)
    {
        var request = ArrayPool<byte>.Shared.Rent(MaxRequestBytes);
        var body = new ArrayBufferWriter<byte>(256);
        try
        {
            using var timeout = new CancellationTokenSource(5000);
            var length = 0;
            var end = -1;
            while (end < 0)
            {
                if (length == MaxRequestBytes)
                {
                    await RespondAsync(socket, 431, "text/plain", "request too large\n"u8.ToArray()).ConfigureAwait(false);
                    return;
                }

                var n = await socket.ReceiveAsync(request.AsMemory(length, MaxRequestBytes - length), SocketFlags.None, timeout.Token).ConfigureAwait(false);
                if (n == 0)
                {
                    return;
                }

                length += n;
                end = request.AsSpan(0, length).IndexOf("\r\n\r\n"u8);
            }

            var line = request.AsSpan(0, request.AsSpan(0, length).IndexOf("\r\n"u8));
            var sp1 = line.IndexOf((byte)' ');
            var sp2 = sp1 < 0 ? -1 : line[(sp1 + 1)..].IndexOf((byte)' ');
            if (sp1 <= 0 || sp2 <= 0)
            {
                await RespondAsync(socket, 400, "text/plain", "bad request\n"u8.ToArray()).ConfigureAwait(false);
                return;
            }

            var method = line[..sp1];
            var target = line.Slice(sp1 + 1, sp2);
            var query = target.IndexOf((byte)'?');
            var path = Encoding.ASCII.GetString(query < 0 ? target : target[..query]);
            if (!_routes.TryGetValue(path, out var route))
            {
                await RespondAsync(socket, 404, "text/plain", "not found\n"u8.ToArray()).ConfigureAwait(false);
                return;
            }

            if (!method.SequenceEqual("GET"u8) && !method.SequenceEqual("HEAD"u8))
            {
                await RespondAsync(socket, 405, "text/plain", "only GET\n"u8.ToArray(), allow: true).ConfigureAwait(false);
                return;
            }

            var (status, contentType) = route(body);
            await RespondAsync(socket, status, contentType, method.SequenceEqual("HEAD"u8) ? [] : body.WrittenMemory.ToArray(), contentLength: body.WrittenCount).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException or ObjectDisposedException or IOException)
        {
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(request);
            socket.Dispose();
        }
    }

    private static async Task RespondAsync(Socket socket, int status, string contentType, byte[] body, bool allow = false, int contentLength = -1)
    {
        var head = new StringBuilder(160)
            .Append("HTTP/1.1 ").Append(status).Append(' ').Append(Encoding.ASCII.GetString(Http.ResponseWriter.ReasonPhrase(status)))
            .Append("\r\nContent-Type: ").Append(contentType)
            .Append("\r\nContent-Length: ").Append(contentLength >= 0 ? contentLength : body.Length)
            .Append("\r\nCache-Control: no-store\r\nConnection: close\r\n");
        if (allow)
        {
            head.Append("Allow: GET, HEAD\r\n");
        }

        head.Append("\r\n");
        await SocketSend.SendAllAsync(socket, Encoding.ASCII.GetBytes(head.ToString())).ConfigureAwait(false);
        if (body.Length > 0)
        {
            await SocketSend.SendAllAsync(socket, body).ConfigureAwait(false);
        }

        socket.Shutdown(SocketShutdown.Send);
    }

    public async ValueTask DisposeAsync()
    {
        if (_stopping)
        {
            return; // the host stops, then disposes: the second call has nothing left to do
        }

        _stopping = true;
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener?.Dispose();
        await _acceptLoop.ConfigureAwait(false);
        _stop.Dispose();
    }
}
