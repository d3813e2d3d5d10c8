using System.Buffers;
using System.Runtime.InteropServices;
using System.Text;
using ChronoGuard.Proxy;
using ChronoGuard.Sidecar.Cli;
using ChronoGuard.Stats;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ChronoGuard.Sidecar.Hosting;

/// <summary>Starts the proxy and stats listeners, drains on stop, reloads the policy on SIGHUP.</summary>
internal sealed class SidecarService(SidecarSettings settings, IDnsResolver resolver, TimeProvider time, ILoggerFactory loggers) : IHostedService, IAsyncDisposable
{
    private readonly ILogger _logger = loggers.CreateLogger("chronoguard");
    private ProxyServer? _proxy;
    private StatsServer? _stats;
    private PosixSignalRegistration? _sighup;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var context = new ProxyContext(settings.Proxy, resolver, time, loggers.CreateLogger("chronoguard.proxy"), RequestGate.AllowAll);
        _proxy = new ProxyServer(context);
        _stats = new StatsServer();
        _stats.Map("/healthz", static body =>
        {
            body.Write("ok\n"u8);
            return (200, "text/plain; charset=utf-8");
        });
        _stats.Map("/readyz", body =>
        {
            var ready = _proxy.IsListening;
            body.Write(ready ? "ready\n"u8 : "not ready: proxy not listening\n"u8);
            return (ready ? 200 : 503, "text/plain; charset=utf-8");
        });

        Listen(() => _proxy.Start(), settings.Proxy.Listen, "Proxy:Listen");
        Listen(() => _stats.Start(settings.Stats.Listen), settings.Stats.Listen, "Stats:Listen");
        if (string.IsNullOrEmpty(settings.Policy.Path))
        {
            SidecarLog.ObserveMode(_logger);
        }

        _sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
        {
            // SIGHUP is reserved for policy reload; never let it terminate the process.
            context.Cancel = true;
            SidecarLog.Sighup(_logger);
        });
        var proxyEndpoint = _proxy.LocalEndPoint!.ToString();
        var statsEndpoint = _stats.LocalEndPoint!.ToString();
        SidecarLog.Started(_logger, CommandLine.Version, proxyEndpoint, statsEndpoint);
        return Task.CompletedTask;
    }

    private static void Listen(Action start, string endpoint, string key)
    {
        try
        {
            start();
        }
        catch (System.Net.Sockets.SocketException ex)
        {
            throw new StartupException($"{key}: cannot listen on {endpoint}: {ex.Message}", ex);
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        SidecarLog.Stopping(_logger);
        _sighup?.Dispose();
        if (_proxy is not null)
        {
            await _proxy.DrainAsync(CancellationToken.None).ConfigureAwait(false);
        }

        if (_stats is not null)
        {
            await _stats.DisposeAsync().ConfigureAwait(false);
        }

        SidecarLog.Stopped(_logger);
    }

    public async ValueTask DisposeAsync()
    {
        _sighup?.Dispose();
        if (_proxy is not null)
        {
            await _proxy.DisposeAsync().ConfigureAwait(false);
        }

        if (_stats is not null)
        {
            await _stats.DisposeAsync().ConfigureAwait(false);
        }
    }
}
