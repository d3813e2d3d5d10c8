using System.Globalization;
using System.Net;
using System.Net.Sockets;
using ChronoGuard.Net;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Cli;

/// <summary>The listeners own their ports: a second instance fails at start, a restart still binds.</summary>
public sealed class ListenerTests
{
    [Fact]
    public async Task A_second_instance_on_a_bound_port_exits_2_with_one_line_naming_the_address_as_configured()
    {
        using var dir = new TempDir();
        await using var first = await SidecarProcess.StartAsync(dir.Path);
        var proxy = first.ProxyEndPoint.ToString();
        var stats = "localhost:" + first.StatsEndPoint.Port.ToString(CultureInfo.InvariantCulture);

        var onProxy = await SidecarRun.RunAsync(dir.Path, ["run", "--listen", proxy, "--stats", "127.0.0.1:0", "--audit-dir", dir.File("audit-2")]);
        var onStats = await SidecarRun.RunAsync(dir.Path, ["run", "--listen", "127.0.0.1:0", "--stats", stats, "--audit-dir", dir.File("audit-3")]);

        Assert.Equal(2, onProxy.ExitCode);
        Assert.Equal($"{proxy} is in use", onProxy.Stderr.TrimEnd());
        Assert.Equal(2, onStats.ExitCode);
        Assert.Equal($"{stats} is in use", onStats.Stderr.TrimEnd());
        Assert.Equal(string.Empty, onProxy.Stdout + onStats.Stdout);

        // The first instance still owns both ports alone.
        using var http = new HttpClient { BaseAddress = new Uri($"http://{first.StatsEndPoint}") };
        Assert.Equal("ready\n", await http.GetStringAsync(new Uri("/readyz", UriKind.Relative)));
        Assert.False(first.Process.HasExited);
    }

    [Fact]
    public async Task A_restarted_sidecar_binds_while_the_previous_ones_connections_are_in_TIME_WAIT()
    {
        using var dir = new TempDir();
        IPEndPoint proxy, stats;
        await using (var first = await SidecarProcess.StartAsync(dir.Path))
        {
            (proxy, stats) = (first.ProxyEndPoint, first.StatsEndPoint);
            // The server closes first in both exchanges, so its side of each connection lingers.
            using (var scrape = await RawClient.ConnectAsync(stats))
            {
                await scrape.SendAsync("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
                Assert.Equal(200, (await scrape.ReadHeadAsync()).Status);
                await scrape.ReadToEndAsync();
            }

            using (var malformed = await RawClient.ConnectAsync(proxy))
            {
                await malformed.SendAsync("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
                Assert.Equal(400, (await malformed.ReadHeadAsync()).Status);
                await malformed.ReadToEndAsync();
            }

            first.Signal("TERM");
            Assert.Equal(0, await first.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        }

        // The precondition is real: both ports hold a TIME_WAIT entry. (Kernels differ on whether that
        // blocks a bind without SO_REUSEADDR; the option test below pins what we set.)
        Assert.True(HasTimeWait(proxy.Port), $"no TIME_WAIT on {proxy}");
        Assert.True(HasTimeWait(stats.Port), $"no TIME_WAIT on {stats}");

        await using var second = await SidecarProcess.StartAsync(dir.Path, ["--listen", proxy.ToString(), "--stats", stats.ToString()]);
        Assert.Equal(proxy, second.ProxyEndPoint);
        Assert.Equal(stats, second.StatsEndPoint);
    }

    [Fact]
    public void Listeners_set_SO_REUSEADDR_for_restarts_and_never_SO_REUSEPORT()
    {
        using var listener = ListenSocket.Open(new IPEndPoint(IPAddress.Loopback, 0), backlog: 1);

        Assert.Equal(1, RawOption(listener, 2)); // SO_REUSEADDR
        Assert.Equal(0, RawOption(listener, 15)); // SO_REUSEPORT: would let a second process share the port
        using var second = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        second.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        Assert.Equal(SocketError.AddressAlreadyInUse, Assert.Throws<SocketException>(() => second.Bind(listener.LocalEndPoint!)).SocketErrorCode);
    }

    private static int RawOption(Socket socket, int name)
    {
        var value = new byte[4];
        socket.GetRawSocketOption(1, name, value); // SOL_SOCKET
        return BitConverter.ToInt32(value);
    }

    /// <summary>Whether /proc/net/tcp lists a TIME_WAIT (state 06) connection on this local port.</summary>
    private static bool HasTimeWait(int port)
    {
        foreach (var line in File.ReadLines("/proc/net/tcp").Skip(1))
        {
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var local = fields[1];
            if (int.Parse(local[(local.IndexOf(':', StringComparison.Ordinal) + 1)..], NumberStyles.HexNumber, CultureInfo.InvariantCulture) == port && fields[3] == "06")
            {
                return true;
            }
        }

        return false;
    }
}
