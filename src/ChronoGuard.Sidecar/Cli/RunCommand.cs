using System.Text.Encodings.Web;
using System.Text.Json;
using ChronoGuard.Proxy;
using ChronoGuard.Sidecar.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace ChronoGuard.Sidecar.Cli;

/// <summary><c>chronoguard run</c>: the sidecar on Microsoft.Extensions.Hosting.</summary>
internal static class RunCommand
{
    public static async Task<int> RunAsync(string[] args, TextWriter stderr, CancellationToken cancellationToken)
    {
        var error = RunArguments.TryParse(args, out var configFile, out var overrides);
        if (error is not null)
        {
            await stderr.WriteLineAsync(error).ConfigureAwait(false);
            return CommandLine.UsageError;
        }

        if (configFile is not null && !File.Exists(configFile) && !Directory.Exists(configFile))
        {
            await stderr.WriteLineAsync($"{configFile}: config file not found").ConfigureAwait(false);
            return CommandLine.UsageError;
        }

        var fileToRead = configFile ?? (File.Exists(SidecarConfiguration.DefaultFile) ? SidecarConfiguration.DefaultFile : null);
        if (fileToRead is not null && ConfigurationFile.Check(fileToRead) is { } fileError)
        {
            await stderr.WriteLineAsync(fileError).ConfigureAwait(false);
            return CommandLine.UsageError;
        }

        IHost host;
        SidecarSettings settings;
        try
        {
            var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
            {
                DisableDefaults = true,
                ContentRootPath = Directory.GetCurrentDirectory(),
            });
            SidecarConfiguration.Add(builder.Configuration, configFile, overrides);
            settings = SidecarSettings.Bind(builder.Configuration, configFile);
            builder.Logging.ClearProviders();
            builder.Logging.AddConfiguration(builder.Configuration.GetSection("Logging"));
            // The host logs a start-up failure as "Hosting failed to start" with its stack trace (about 750
            // characters of JSON on stdout) before rethrowing it; RunAsync below says it in one line instead.
            builder.Logging.AddFilter("Microsoft.Extensions.Hosting.Internal.Host", LogLevel.None);
            var logging = builder.Configuration.GetSection("Logging");
            // Validated above: Format (ours, SPEC §3) or the console logger's own FormatterName; json unless either says otherwise.
            if (ConfigurationValidator.LogFormatOf(logging["Format"] ?? logging["Console:FormatterName"]))
            {
                builder.Logging.AddSimpleConsole(o =>
                {
                    o.SingleLine = true;
                    o.UseUtcTimestamp = true;
                    o.TimestampFormat = "yyyy-MM-dd'T'HH:mm:ss.fff'Z' ";
                    // Logs go to a file or a log collector: no escape codes in them.
                    o.ColorBehavior = LoggerColorBehavior.Disabled;
                });
            }
            else
            {
                builder.Logging.AddJsonConsole(o =>
                {
                    o.UseUtcTimestamp = true;
                    o.TimestampFormat = "yyyy-MM-dd'T'HH:mm:ss.fff'Z'";
                    // The default encoder is HTML-safe and writes a quote as \u0022 (and ', <, >, &, + and
                    // every non-ASCII letter as escapes too), which log readers and grep then miss. These lines
                    // are JSON for log pipelines, never embedded in HTML; JSON's own escaping (\", \\,
                    // control characters) is still applied, so each line stays one valid JSON object.
                    o.JsonWriterOptions = new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
                });
            }
            builder.Services.Configure<ConsoleLifetimeOptions>(o => o.SuppressStatusMessages = true);
            // The host must outwait the drain, or it would abandon tunnels the drain promised to keep.
            builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromMilliseconds(settings.Proxy.DrainTimeoutMs + 5000));
            builder.Services.AddSingleton(settings);
            builder.Services.AddSingleton(TimeProvider.System);
            builder.Services.AddSingleton<IDnsResolver>(SystemDnsResolver.Instance);
            builder.Services.AddHostedService<SidecarService>();
            host = builder.Build();
        }
        catch (StartupException ex)
        {
            await stderr.WriteLineAsync(ex.Message).ConfigureAwait(false);
            return CommandLine.UsageError;
        }
        catch (Exception ex) when (ex is InvalidDataException or FormatException or InvalidOperationException or IOException or ArgumentException)
        {
            await stderr.WriteLineAsync(SidecarConfiguration.Describe(ex, configFile)).ConfigureAwait(false);
            return CommandLine.UsageError;
        }

        using (host)
        {
            // Resolved before the run: RunAsync disposes the host's services when it returns.
            var sidecars = host.Services.GetServices<IHostedService>().ToArray();
            try
            {
                await host.RunAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (StartupException ex)
            {
                await stderr.WriteLineAsync(ex.Message).ConfigureAwait(false);
                return CommandLine.UsageError;
            }
            catch (Exception ex) when (ex is not OutOfMemoryException && ex is not OperationCanceledException)
            {
                // Anything else the sidecar did not turn into a StartupException: still one line, no trace.
                await stderr.WriteLineAsync(CommandLine.Unexpected("run", ex)).ConfigureAwait(false);
                return CommandLine.UsageError;
            }

            // A stop that could not commit what it had is not a clean stop (SPEC §5): one line, non-zero.
            foreach (var service in sidecars)
            {
                if (service is SidecarService { StopFailure: { } failure })
                {
                    await stderr.WriteLineAsync(failure).ConfigureAwait(false);
                    return CommandLine.CheckFailed;
                }
            }
        }

        return CommandLine.Ok;
    }
}
