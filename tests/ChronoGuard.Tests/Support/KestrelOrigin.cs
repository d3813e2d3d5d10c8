using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace ChronoGuard.Tests.Support;

/// <summary>
/// A real HTTP origin on loopback (Kestrel), plain or TLS. Endpoints: /hello, /echo (body back,
/// chunked when asked), /big?n= (n pseudo-random bytes, chunked), /conn (the Kestrel connection id).
/// </summary>
internal sealed class KestrelOrigin : IAsyncDisposable
{
    private readonly WebApplication _app;

    private KestrelOrigin(WebApplication app, Uri address)
    {
        _app = app;
        Address = address;
    }

    public Uri Address { get; }

    public int Port => Address.Port;

    public ConcurrentDictionary<string, int> ConnectionIds { get; } = new();

    public static async Task<KestrelOrigin> StartAsync(bool tls = false)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, o =>
        {
            if (tls)
            {
                o.UseHttps(TestCertificates.Server);
            }
        }));
        var app = builder.Build();
        KestrelOrigin? self = null;
        app.Use(async (ctx, next) =>
        {
            self!.ConnectionIds.AddOrUpdate(ctx.Connection.Id, 1, (_, n) => n + 1);
            await next(ctx);
        });
        app.MapGet("/hello", () => "hello from origin");
        app.MapGet("/conn", (HttpContext ctx) => ctx.Connection.Id);
        app.MapGet("/headers", (HttpContext ctx) =>
            string.Join("\n", ctx.Request.Headers.Select(h => h.Key + ": " + h.Value)));
        app.MapPost("/echo", async (HttpContext ctx) =>
        {
            // Without a Content-Length, Kestrel frames the response with chunked encoding.
            if (!ctx.Request.Query.ContainsKey("chunked") && ctx.Request.ContentLength is { } len)
            {
                ctx.Response.ContentLength = len;
            }

            await ctx.Request.Body.CopyToAsync(ctx.Response.Body);
        });
        app.MapPost("/sha256", async (HttpContext ctx) =>
        {
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buffer = new byte[64 * 1024];
            long total = 0;
            int n;
            while ((n = await ctx.Request.Body.ReadAsync(buffer)) > 0)
            {
                sha.AppendData(buffer, 0, n);
                total += n;
            }

            return total + ":" + Convert.ToHexStringLower(sha.GetHashAndReset());
        });
        app.MapGet("/big", async (HttpContext ctx) =>
        {
            var n = long.Parse(ctx.Request.Query["n"]!, System.Globalization.CultureInfo.InvariantCulture);
            var data = TestData.Bytes(n, seed: 7);
            await ctx.Response.Body.WriteAsync(data);
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        self = new KestrelOrigin(app, new Uri(address));
        return self;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
