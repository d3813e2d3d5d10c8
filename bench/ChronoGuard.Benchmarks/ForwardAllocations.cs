using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using ChronoGuard.Proxy;
using Microsoft.Extensions.Logging.Abstractions;

namespace ChronoGuard.Benchmarks;

/// <summary>
/// Bytes the process allocates per plain-HTTP request forwarded over a kept client connection and a
/// kept upstream (the proxy in-process, allow-all, with a raw-socket origin and client whose own loops
/// allocate one async box per request, ~100 B, counted in). Run:
/// <c>dotnet run -c Release --project bench/ChronoGuard.Benchmarks -- forward-allocations [requests] [clients]</c>
/// (clients at once, default 1: with 32, as perf/tunnel-ab forward drives it, every per-request async
/// method is suspended in many connections at the same time, which a one-box-per-thread pool does not cover).
/// </summary>
internal static class ForwardAllocations
{
    private const int BodyBytes = 1024;

    public static async Task RunAsync(TextWriter output, int requests, int clients)
    {
        var context = new ProxyContext(new ProxyOptions { Listen = "127.0.0.1:0" }, SystemDnsResolver.Instance, TimeProvider.System, NullLogger.Instance, AllowAllGate.Instance);
        await using var server = new ProxyServer(context);
        server.Start();
        using var origin = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        origin.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        origin.Listen(clients * 2);
        var port = ((IPEndPoint)origin.LocalEndPoint!).Port;
        _ = ServeAsync(origin);

        var request = Encoding.ASCII.GetBytes($"GET http://127.0.0.1:{port}/1k.txt HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: bench\r\n\r\n");
        var sockets = new Socket[clients];
        for (var c = 0; c < clients; c++)
        {
            sockets[c] = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await sockets[c].ConnectAsync(server.LocalEndPoint!);
        }

        // Warm-up: every connection's pooled upstream and the proxy's pools at the concurrency measured.
        await RunClientsAsync(sockets, request, 20_000);
        var before = GC.GetTotalAllocatedBytes(precise: true);
        var started = Stopwatch.GetTimestamp();
        await RunClientsAsync(sockets, request, requests);
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        foreach (var socket in sockets)
        {
            socket.Dispose();
        }

        output.WriteLine($"| forwarded GET (1 KiB), kept client and upstream, {clients} client(s) at once | {requests} requests | {allocated / (double)requests:F0} B allocated per request (whole process) | {requests / seconds:F0} req/s |");
    }

    private static Task RunClientsAsync(Socket[] sockets, byte[] request, int requests)
    {
        var each = requests / sockets.Length;
        var loops = new Task[sockets.Length];
        for (var c = 0; c < sockets.Length; c++)
        {
            var socket = sockets[c];
            var count = each + (c < requests % sockets.Length ? 1 : 0);
            loops[c] = Task.Run(async () =>
            {
                var buffer = new byte[16 * 1024];
                for (var i = 0; i < count; i++)
                {
                    await OneAsync(socket, request, buffer);
                }
            });
        }

        return Task.WhenAll(loops);
    }

    private static async Task OneAsync(Socket client, byte[] request, byte[] buffer)
    {
        await client.SendAsync(request.AsMemory());
        var got = 0;
        var total = -1;
        while (total < 0 || got < total)
        {
            var n = await client.ReceiveAsync(buffer.AsMemory(got));
            if (n == 0)
            {
                throw new IOException("the proxy closed the connection");
            }

            got += n;
            if (total < 0 && buffer.AsSpan(0, got).IndexOf("\r\n\r\n"u8) is var end and >= 0)
            {
                total = end + 4 + BodyBytes;
            }
        }
    }

    private static async Task ServeAsync(Socket listener)
    {
        var response = Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Length: {BodyBytes}\r\nContent-Type: text/plain\r\n\r\n" + new string('x', BodyBytes));
        while (true)
        {
            Socket upstream;
            try
            {
                upstream = await listener.AcceptAsync();
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            catch (SocketException)
            {
                return;
            }

            _ = AnswerAsync(upstream, response);
        }
    }

    private static async Task AnswerAsync(Socket upstream, byte[] response)
    {
        using var _ = upstream;
        var buffer = new byte[8192];
        var have = 0;
        try
        {
            while (true)
            {
                var n = await upstream.ReceiveAsync(buffer.AsMemory(have));
                if (n == 0)
                {
                    return;
                }

                have += n;
                if (buffer.AsSpan(0, have).IndexOf("\r\n\r\n"u8) >= 0)
                {
                    have = 0;
                    await upstream.SendAsync(response.AsMemory());
                }
            }
        }
        catch (SocketException)
        {
        }
    }
}
