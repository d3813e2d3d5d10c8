using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace ChronoGuard.Tests.Support;

/// <summary>
/// A TLS origin on loopback (Kestrel) with a certificate of the test's own CA. Every request is noted
/// (<see cref="Seen"/>) and answered with what arrived: the request line, then each header as
/// <c>Name: value</c> (under <c>/quiet</c> only "ok": see <see cref="Echoes"/>). <c>/conn</c> answers the connection id, <c>/sse</c> sends one event, waits for
/// <see cref="ReleaseStream"/>, then sends a second, <c>/big?n=</c> sends n bytes chunked, <c>/files/</c> serves <see cref="FilesRoot"/>,
/// and a WebSocket request (any path) is echoed message by message.
/// </summary>
internal sealed class TlsEchoOrigin : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private TlsEchoOrigin(WebApplication app)
    {
        _app = app;
    }

    public int Port { get; private set; }

    /// <summary>"METHOD /path?query" of every request that reached the origin, in order.</summary>
    public ConcurrentQueue<string> Seen { get; } = new();

    /// <summary>The full echo of every request that reached the origin (request line and headers).</summary>
    public ConcurrentQueue<string> Echoes { get; } = new();

    /// <summary>Distinct TLS connections the origin accepted.</summary>
    public ConcurrentDictionary<string, int> Connections { get; } = new();

    /// <summary>A directory served as static files under <c>/files/</c> (a bare git repository for the dumb HTTP protocol); 404 for anything missing.</summary>
    public string? FilesRoot { get; set; }

    private Microsoft.AspNetCore.Connections.Features.IConnectionLifetimeFeature? _kept;

    /// <summary>Set when the connection <c>/conn-kept</c> answered on has closed (after <see cref="CloseKept"/>).</summary>
    public TaskCompletionSource Closed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Closes the idle connection the last <c>/conn-kept</c> was answered on, as an origin's keep-alive timeout would.</summary>
    public Task CloseKeptAsync()
    {
        _kept!.Abort();
        return Closed.Task.WaitAsync(TimeSpan.FromSeconds(10));
    }

    /// <summary>Lets <c>/sse</c> send its second event.</summary>
    public void ReleaseStream() => _release.TrySetResult();

    public static async Task<TlsEchoOrigin> StartAsync(X509Certificate2 certificate)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, o => o.UseHttps(certificate)));
        var app = builder.Build();
        TlsEchoOrigin? self = null;
        app.UseWebSockets();
        app.Run(async ctx =>
        {
            var origin = self!;
            var request = ctx.Request;
            var line = $"{request.Method} {request.Path}{request.QueryString}";
            origin.Seen.Enqueue(line);
            origin.Connections.AddOrUpdate(ctx.Connection.Id, 1, (_, n) => n + 1);
            if (origin.FilesRoot is { } root && request.Path.StartsWithSegments("/files", out var rest))
            {
                var file = Path.GetFullPath(Path.Combine(root, rest.Value!.TrimStart('/')));
                if (!file.StartsWith(root, StringComparison.Ordinal) || !File.Exists(file))
                {
                    ctx.Response.StatusCode = 404;
                    return;
                }

                ctx.Response.ContentType = "application/octet-stream";
                await ctx.Response.SendFileAsync(file);
                return;
            }

            if (ctx.WebSockets.IsWebSocketRequest)
            {
                // Echoes each message until the client closes.
                using var socket = await ctx.WebSockets.AcceptWebSocketAsync();
                var buffer = new byte[64 * 1024];
                while (true)
                {
                    var received = await socket.ReceiveAsync(buffer, CancellationToken.None);
                    if (received.MessageType == System.Net.WebSockets.WebSocketMessageType.Close)
                    {
                        await socket.CloseAsync(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
                        return;
                    }

                    await socket.SendAsync(buffer.AsMemory(0, received.Count), received.MessageType, received.EndOfMessage, CancellationToken.None);
                }
            }

            switch (request.Path.Value)
            {
                case "/conn":
                    await ctx.Response.WriteAsync(ctx.Connection.Id);
                    return;
                case "/conn-kept":
                    // Answered as keep-alive; the test closes this connection later (CloseKept).
                    var lifetime = ctx.Features.Get<Microsoft.AspNetCore.Connections.Features.IConnectionLifetimeFeature>()!;
                    lifetime.ConnectionClosed.Register(() => origin.Closed.TrySetResult());
                    origin._kept = lifetime;
                    await ctx.Response.WriteAsync(ctx.Connection.Id);
                    return;
                case "/sse":
                    ctx.Response.ContentType = "text/event-stream";
                    await ctx.Response.WriteAsync("data: one\n\n");
                    await ctx.Response.Body.FlushAsync();
                    await origin._release.Task;
                    await ctx.Response.WriteAsync("data: two\n\n");
                    return;
                case "/big":
                    var n = long.Parse(request.Query["n"]!, System.Globalization.CultureInfo.InvariantCulture);
                    await ctx.Response.Body.WriteAsync(TestData.Bytes(n, seed: 7));
                    return;
            }

            var echo = new StringBuilder(line).Append('\n');
            foreach (var header in request.Headers)
            {
                echo.Append(header.Key).Append(": ").Append(header.Value.ToString()).Append('\n');
            }

            if (request.ContentLength is > 0 || request.Headers.TransferEncoding.Count > 0)
            {
                using var reader = new StreamReader(request.Body);
                echo.Append("body: ").Append(await reader.ReadToEndAsync()).Append('\n');
            }

            var text = echo.ToString();
            origin.Echoes.Enqueue(text);
            ctx.Response.ContentType = "text/plain";
            // Under /quiet the origin keeps what it saw to itself (a credential it received is not sent back).
            await ctx.Response.WriteAsync(request.Path.StartsWithSegments("/quiet") ? "ok\n" : text);
        });
        self = new TlsEchoOrigin(app);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        self.Port = new Uri(address).Port;
        return self;
    }

    public async ValueTask DisposeAsync()
    {
        _release.TrySetResult();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
