using System.Net;
using System.Net.Sockets;

namespace ChronoGuard.LoadGen;

/// <summary>TCP echo server, so a benchmark harness can provide its own tunnel-mode target.</summary>
internal static class EchoServer
{
    public static async Task<int> RunAsync(IPEndPoint endPoint, CancellationToken ct)
    {
        using var listener = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            // A harness restarting the server between runs must not wait out TIME_WAIT.
            listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            listener.Bind(endPoint);
            listener.Listen(4096);
        }
        catch (SocketException ex)
        {
            await Console.Error.WriteLineAsync($"echo-server: cannot listen on {endPoint}: {ex.Message}").ConfigureAwait(false);
            return 1;
        }
        await Console.Error.WriteLineAsync($"echo-server listening on {listener.LocalEndPoint}").ConfigureAwait(false);
        long connections = 0;
        while (!ct.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptAsync(ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            catch (SocketException)
            {
                // Typically EMFILE under a connection storm: back off instead of spinning on accept.
                try
                {
                    await Task.Delay(50, ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
                continue;
            }
            connections++;
            client.NoDelay = true;
            _ = ServeAsync(client, ct);
        }
        await Console.Error.WriteLineAsync($"echo-server stopped after {connections} connections").ConfigureAwait(false);
        return 0;
    }

    private static async Task ServeAsync(Socket client, CancellationToken ct)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            int n;
            while ((n = await client.ReceiveAsync(buffer, SocketFlags.None, ct).ConfigureAwait(false)) > 0)
            {
                var sent = 0;
                while (sent < n)
                {
                    sent += await client.SendAsync(buffer.AsMemory(sent, n - sent), SocketFlags.None, ct).ConfigureAwait(false);
                }
            }
            // Half-close mirrors the client's: it sees EOF only after every echoed byte.
            client.Shutdown(SocketShutdown.Send);
        }
        // A client's reset or the server's shutdown ends that connection only.
        catch (Exception)
        {
        }
        finally
        {
            client.Dispose();
        }
    }
}
