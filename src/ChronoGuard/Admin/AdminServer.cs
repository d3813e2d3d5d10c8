using System.Runtime.CompilerServices;
using System.Buffers;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using ChronoGuard.Net;
using Microsoft.Extensions.Logging;

namespace ChronoGuard.Admin;

/// <summary>
/// The admin listener (SPEC §9): HTTP/1.1, one request per connection, every request authenticated by
/// a bearer token before its route is even looked up (an unknown path without a token is 401 too, so
/// the API's shape is not probeable). It shares no code path with the proxy or the stats listener: it
/// is its own socket, and a flood on it holds only its own connections.
/// </summary>
internal sealed class AdminServer(AdminTokens tokens, ILogger logger, TimeProvider time) : IAsyncDisposable
{
    private const int MaxHeadBytes = 8 * 1024;

    /// <summary>A grant with many domains is a few KiB; nothing the API takes is larger.</summary>
    public const int MaxBodyBytes = 64 * 1024;

    /// <summary>Connections served at once; past it a connection is answered 503 and closed, so a flood holds a bounded few buffers.</summary>
    public const int MaxConnections = 64;

    private int _open;

    private readonly Dictionary<(string Method, string Path), AdminRoute> _routes = [];
    private readonly List<(string Method, string Prefix, AdminRoute Route)> _prefixes = [];
    private readonly CancellationTokenSource _stop = new();
    private Socket? _listener;
    private Task _acceptLoop = Task.CompletedTask;
    private volatile bool _stopping;

    public IPEndPoint? LocalEndPoint { get; private set; }

    public void Map(string method, string path, AdminRoute route) => _routes[(method, path)] = route;

    /// <summary>A route for <c>PREFIX/ID</c>: the handler gets the ID (one non-empty segment).</summary>
    public void MapPrefix(string method, string prefix, AdminRoute route) => _prefixes.Add((method, prefix, route));

    public void Start(string listen)
    {
        var listener = ListenSocket.Open(Endpoints.Parse(listen, "Admin:Listen"), backlog: 64);
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
                    if (episodeStarted)
                    {
                        AdminLog.AcceptFailing(logger, error.ToString());
                    }
                }, failures => AdminLog.AcceptRecovered(logger, failures), _stop.Token).ConfigureAwait(false) is not { } socket)
            {
                return;
            }

            if (Interlocked.Increment(ref _open) > MaxConnections)
            {
                Interlocked.Decrement(ref _open);
                _ = RefuseBusyAsync(socket);
                continue;
            }

            _ = ServeAsync(socket);
        }
    }

    private async Task ServeAsync(Socket socket)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(MaxHeadBytes);
        var slot = new Slot(this);
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            timeout.CancelAfter(TimeSpan.FromSeconds(10));
            var length = 0;
            var end = -1;
            while (end < 0)
            {
                if (length == MaxHeadBytes)
                {
                    await RespondAsync(slot, socket, AdminResponse.Error(431, "request head too large")).ConfigureAwait(false);
                    return;
                }

                var n = await socket.ReceiveAsync(buffer.AsMemory(length, MaxHeadBytes - length), SocketFlags.None, timeout.Token).ConfigureAwait(false);
                if (n == 0)
                {
                    return;
                }

                length += n;
                end = buffer.AsSpan(0, length).IndexOf("\r\n\r\n"u8);
            }

            var parsed = Parse(buffer.AsSpan(0, end + 2));
            if (parsed.Problem is { } problem)
            {
                await RespondAsync(slot, socket, problem).ConfigureAwait(false);
                return;
            }

            var (method, path, query, actor, bodyLength) = (parsed.Method, parsed.Path, parsed.Query, parsed.Actor, parsed.BodyLength);
            if (actor is null)
            {
                AdminLog.Unauthorized(logger, method, path, (socket.RemoteEndPoint as IPEndPoint)?.ToString() ?? "?");
                await RespondAsync(slot, socket, AdminResponse.Error(401, "a valid bearer token is required (Authorization: Bearer ...)"), unauthorized: true).ConfigureAwait(false);
                return;
            }

            if (parsed.BodyProblem is { } bodyProblem)
            {
                await RespondAsync(slot, socket, bodyProblem).ConfigureAwait(false);
                return;
            }

            byte[] body;
            if (parsed.Chunked)
            {
                // What HttpClient sends for a streamed JSON body: collect the framing, then decode it.
                var raw = new ArrayBufferWriter<byte>(1024);
                raw.Write(buffer.AsSpan(end + 4, length - (end + 4)));
                byte[]? decoded;
                int state;
                while ((state = AdminChunked.TryDecode(raw.WrittenSpan, MaxBodyBytes, out decoded)) == 0)
                {
                    if (raw.WrittenCount > MaxBodyBytes * 2)
                    {
                        state = -1;
                        break;
                    }

                    var n = await socket.ReceiveAsync(raw.GetMemory(4096), SocketFlags.None, timeout.Token).ConfigureAwait(false);
                    if (n == 0)
                    {
                        return;
                    }

                    raw.Advance(n);
                }

                if (state < 0)
                {
                    await RespondAsync(slot, socket, AdminResponse.Error(state == -2 ? 413 : 400, state == -2 ? $"body over {MaxBodyBytes} bytes" : "bad chunked body")).ConfigureAwait(false);
                    return;
                }

                body = decoded!;
            }
            else
            {
                body = new byte[bodyLength];
                var have = Math.Min(length - (end + 4), body.Length);
                buffer.AsSpan(end + 4, have).CopyTo(body);
                while (have < body.Length)
                {
                    var n = await socket.ReceiveAsync(body.AsMemory(have), SocketFlags.None, timeout.Token).ConfigureAwait(false);
                    if (n == 0)
                    {
                        return;
                    }

                    have += n;
                }
            }

            var (route, id, allowed) = Find(method, path);
            AdminResponse response;
            if (route is null)
            {
                response = allowed is null ? AdminResponse.Error(404, $"no such endpoint: {path}") : AdminResponse.Error(405, $"{path} takes {allowed}");
            }
            else
            {
                try
                {
                    response = await route(new AdminRequest(method, path, query, body, actor), id).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    AdminLog.Failed(logger, method, path, ex.GetType().Name + ": " + ex.Message.ReplaceLineEndings(" "));
                    response = AdminResponse.Error(500, "the request failed; the sidecar's log says why");
                }
            }

            AdminLog.Served(logger, actor, method, path, response.Status);
            await RespondAsync(slot, socket, response).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException or ObjectDisposedException or IOException)
        {
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            slot.Release();
            socket.Dispose();
        }
    }

    /// <summary>
    /// A connection's place under <see cref="MaxConnections"/>, given back once, before its answer is
    /// sent: a client that has read its answer can count on the place being free.
    /// </summary>
    private sealed class Slot(AdminServer server)
    {
        private int _released;

        public void Release()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                Interlocked.Decrement(ref server._open);
            }
        }
    }

    private static Task RespondAsync(Slot slot, Socket socket, AdminResponse response, bool unauthorized = false)
    {
        slot.Release();
        return RespondAsync(socket, response, unauthorized);
    }

    private static async Task RefuseBusyAsync(Socket socket)
    {
        try
        {
            await RespondAsync(socket, AdminResponse.Error(503, $"{MaxConnections} admin requests are being served; try again")).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or IOException)
        {
        }
        finally
        {
            socket.Dispose();
        }
    }

    private sealed record Head(string Method, string Path, string Query, string? Actor, long BodyLength, AdminResponse? Problem, AdminResponse? BodyProblem, bool Chunked = false);

    /// <summary>The request line and the headers that matter; the token is checked here, before any route is looked at.</summary>
    private Head Parse(ReadOnlySpan<byte> head)
    {
        var lineEnd = head.IndexOf("\r\n"u8);
        var line = head[..lineEnd];
        var sp1 = line.IndexOf((byte)' ');
        var sp2 = sp1 < 0 ? -1 : line[(sp1 + 1)..].IndexOf((byte)' ');
        if (sp1 <= 0 || sp2 <= 0 || !line[(sp1 + sp2 + 2)..].StartsWith("HTTP/1."u8))
        {
            return new Head(string.Empty, string.Empty, string.Empty, null, 0, AdminResponse.Error(400, "not an HTTP/1.1 request line"), null);
        }

        var method = Encoding.ASCII.GetString(line[..sp1]);
        var target = Encoding.ASCII.GetString(line.Slice(sp1 + 1, sp2));
        var q = target.IndexOf('?', StringComparison.Ordinal);
        var path = q < 0 ? target : target[..q];
        var query = q < 0 ? string.Empty : target[(q + 1)..];
        var headers = head[(lineEnd + 2)..];

        // Two Authorization headers are refused like none: which one a proxy in front would keep is a guess.
        var authorization = Header(headers, "authorization"u8, out var authorizations);
        var actor = authorizations == 1 ? tokens.Authenticate(authorization) : null;

        var contentLength = Header(headers, "content-length"u8, out var lengths);
        long bodyLength = 0;
        AdminResponse? bodyProblem = null;
        if (lengths > 1 || (lengths == 1 && !long.TryParse(contentLength, NumberStyles.None, CultureInfo.InvariantCulture, out bodyLength)))
        {
            bodyProblem = AdminResponse.Error(400, "bad Content-Length");
        }
        else if (Header(headers, "transfer-encoding"u8, out var encodings) is { Length: > 0 } encoding)
        {
            if (encodings > 1 || lengths > 0 || !Ascii.EqualsIgnoreCase(encoding, "chunked"u8))
            {
                bodyProblem = AdminResponse.Error(400, "Transfer-Encoding: only chunked, alone and without Content-Length");
            }
            else
            {
                return new Head(method, path, query, actor, 0, null, null, Chunked: true);
            }
        }
        else if (bodyLength > MaxBodyBytes)
        {
            bodyProblem = AdminResponse.Error(413, $"body over {MaxBodyBytes} bytes");
        }

        return new Head(method, path, query, actor, bodyLength, null, bodyProblem);
    }

    private (AdminRoute? Route, string Id, string? Allowed) Find(string method, string path)
    {
        if (_routes.TryGetValue((method, path), out var exact))
        {
            return (exact, string.Empty, null);
        }

        foreach (var (m, prefix, route) in _prefixes)
        {
            if (method == m && path.Length > prefix.Length && path.StartsWith(prefix, StringComparison.Ordinal) && path.IndexOf('/', prefix.Length) < 0)
            {
                return (route, Uri.UnescapeDataString(path[prefix.Length..]), null);
            }
        }

        var methods = new List<string>();
        foreach (var ((m, p), _) in _routes)
        {
            if (p == path)
            {
                methods.Add(m);
            }
        }

        foreach (var (m, prefix, _) in _prefixes)
        {
            if (path.Length > prefix.Length && path.StartsWith(prefix, StringComparison.Ordinal) && path.IndexOf('/', prefix.Length) < 0)
            {
                methods.Add(m);
            }
        }

        return (null, string.Empty, methods.Count == 0 ? null : string.Join(", ", methods));
    }

    /// <summary>The value of a header (case-insensitive name) and how many times it came.</summary>
    private static ReadOnlySpan<byte> Header(ReadOnlySpan<byte> headers, ReadOnlySpan<byte> name, out int count)
    {
        count = 0;
        ReadOnlySpan<byte> value = default;
        while (!headers.IsEmpty)
        {
            var eol = headers.IndexOf("\r\n"u8);
            var field = eol < 0 ? headers : headers[..eol];
            headers = eol < 0 ? default : headers[(eol + 2)..];
            var colon = field.IndexOf((byte)':');
            if (colon == name.Length && Ascii.EqualsIgnoreCase(field[..colon], name))
            {
                count++;
                value = field[(colon + 1)..].Trim((byte)' ').Trim((byte)'\t');
            }
        }

        return value;
    }

    private static async Task RespondAsync(Socket socket, AdminResponse response, bool unauthorized = false)
    {
        var head = new StringBuilder(200)
            .Append("HTTP/1.1 ").Append(response.Status).Append(' ').Append(Encoding.ASCII.GetString(Http.ResponseWriter.ReasonPhrase(response.Status)))
            .Append("\r\nContent-Type: application/json\r\nContent-Length: ").Append(response.Body.Length)
            .Append("\r\nCache-Control: no-store\r\nConnection: close\r\n");
        if (unauthorized)
        {
            head.Append("WWW-Authenticate: Bearer realm=\"chronoguard-admin\"\r\n");
        }

        head.Append("\r\n");
        await SocketSend.SendAllAsync(socket, Encoding.ASCII.GetBytes(head.ToString())).ConfigureAwait(false);
        await SocketSend.SendAllAsync(socket, response.Body).ConfigureAwait(false);
        socket.Shutdown(SocketShutdown.Send);
    }

    public async ValueTask DisposeAsync()
    {
        if (_stopping)
        {
            return;
        }

        _stopping = true;
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener?.Dispose();
        await _acceptLoop.ConfigureAwait(false);
        _stop.Dispose();
    }
}
