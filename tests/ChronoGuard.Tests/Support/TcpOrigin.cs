using System.Net;
using System.Net.Sockets;

namespace ChronoGuard.Tests.Support;

/// <summary>A raw TCP origin on loopback running <paramref name="handler"/> per accepted connection.</summary>
internal sealed class TcpOrigin : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly Task _loop;
    private readonly CancellationTokenSource _stop = new();

    public TcpOrigin(Func<Socket, Task> handler)
        : this(Loopback(), handler)
    {
    }

    /// <summary>An origin on a socket already listening (e.g. one made inside a test network namespace).</summary>
    public TcpOrigin(Socket listener, Func<Socket, Task> handler)
    {
        _listener = listener;
        Port = ((IPEndPoint)_listener.LocalEndPoint!).Port;
        _loop = Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                Socket s;
                try
                {
                    s = await _listener.AcceptAsync(_stop.Token);
                }
                catch (Exception)
                {
                    return;
                }

                _ = Task.Run(async () =>
                {
                    try
                    {
                        await handler(s);
                    }
                    catch (Exception ex) when (ex is SocketException or IOException or ObjectDisposedException)
                    {
                    }
                    finally
                    {
                        s.Dispose();
                    }
                });
            }
        });
    }

    public int Port { get; }

    private static Socket Loopback()
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(4096);
        return listener;
    }

    /// <summary>Echoes every byte until the client's FIN, then closes.</summary>
    public static TcpOrigin Echo() => new(async s =>
    {
        var buffer = new byte[64 * 1024];
        int n;
        while ((n = await s.ReceiveAsync(buffer)) > 0)
        {
            await s.SendAsync(buffer.AsMemory(0, n));
        }

        s.Shutdown(SocketShutdown.Send);
    });

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Dispose();
        await _loop;
        _stop.Dispose();
    }
}
