using System.Net.Sockets;
using System.Text;

namespace ChronoGuard.Sidecar.Cli;

/// <summary>
/// <c>chronoguard healthcheck [--stats HOST:PORT] [--path /readyz]</c>: exit 0 when the stats endpoint
/// answers 200, else 1. For container health checks in images without a shell or curl.
/// </summary>
internal static class HealthcheckCommand
{
    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var stats = "127.0.0.1:9477";
        var path = "/readyz";
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--stats" when i + 1 < args.Length:
                    stats = args[++i];
                    break;
                case "--path" when i + 1 < args.Length && args[i + 1].StartsWith('/'):
                    path = args[++i];
                    break;
                default:
                    await stderr.WriteLineAsync($"healthcheck: unexpected argument '{args[i]}' (usage: healthcheck [--stats HOST:PORT] [--path /readyz])").ConfigureAwait(false);
                    return CommandLine.UsageError;
            }
        }

        System.Net.IPEndPoint endpoint;
        try
        {
            endpoint = Net.Endpoints.Parse(stats, "--stats");
        }
        catch (FormatException ex)
        {
            await stderr.WriteLineAsync("healthcheck: " + ex.Message).ConfigureAwait(false);
            return CommandLine.UsageError;
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(3));
        try
        {
            using var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            await socket.ConnectAsync(endpoint, timeout.Token).ConfigureAwait(false);
            await socket.SendAsync(Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: {stats}\r\nConnection: close\r\n\r\n"), timeout.Token).ConfigureAwait(false);
            var buffer = new byte[512];
            var n = 0;
            while (n < 12)
            {
                var read = await socket.ReceiveAsync(buffer.AsMemory(n), timeout.Token).ConfigureAwait(false);
                if (read == 0)
                {
                    break;
                }

                n += read;
            }

            var line = Encoding.ASCII.GetString(buffer, 0, n).Split("\r\n")[0];
            await stdout.WriteLineAsync($"{path}: {line}").ConfigureAwait(false);
            return line.StartsWith("HTTP/1.1 200", StringComparison.Ordinal) ? CommandLine.Ok : 1;
        }
        catch (SocketException ex)
        {
            var why = ex.SocketErrorCode switch
            {
                SocketError.ConnectionRefused => "connection refused (nothing listens there)",
                SocketError.ConnectionReset => "the connection was reset",
                SocketError.HostUnreachable or SocketError.NetworkUnreachable => "unreachable",
                SocketError.AddressNotAvailable => "the address is not available here",
                SocketError.TooManyOpenSockets => "no file descriptors left",
                var code => $"socket error {code}",
            };
            await stderr.WriteLineAsync($"healthcheck: {stats}{path}: {why}").ConfigureAwait(false);
            return 1;
        }
        catch (OperationCanceledException)
        {
            await stderr.WriteLineAsync($"healthcheck: {stats}{path}: no answer within 3 s").ConfigureAwait(false);
            return 1;
        }
    }
}
