using System.Net;
using System.Net.Sockets;
using System.Text;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Proxy;

/// <summary>SIGTERM against the real executable: stop accepting, let tunnels finish, exit 0.</summary>
public sealed class DrainTests
{
    [Fact]
    public async Task Sigterm_keeps_open_tunnels_working_refuses_new_connections_and_exits_0_when_they_end()
    {
        using var dir = new TempDir();
        await using var origin = TcpOrigin.Echo();
        await using var sidecar = await SidecarProcess.StartAsync(dir.Path);
        using var tunnel = await TunnelTests.OpenTunnelAsync(sidecar.ProxyEndPoint, origin.Port);

        sidecar.Signal("TERM");
        await sidecar.WaitForOutputAsync(l => l.Contains("draining:", StringComparison.Ordinal), TimeSpan.FromSeconds(30));

        await tunnel.SendAsync("still here");
        Assert.Equal("still here", Encoding.ASCII.GetString(await tunnel.ReadExactlyAsync(10)));
        await Assert.ThrowsAnyAsync<SocketException>(async () =>
        {
            using var late = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await late.ConnectAsync(sidecar.ProxyEndPoint);
        });

        tunnel.Socket.Shutdown(SocketShutdown.Send);
        Assert.Empty(await tunnel.ReadToEndAsync());
        Assert.Equal(0, await sidecar.WaitForExitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task Sigterm_closes_tunnels_still_open_after_DrainTimeoutMs_and_exits_0()
    {
        using var dir = new TempDir();
        await using var origin = TcpOrigin.Echo();
        await using var sidecar = await SidecarProcess.StartAsync(dir.Path, environment: new Dictionary<string, string>
        {
            ["CHRONOGUARD__Proxy__DrainTimeoutMs"] = "500",
        });
        using var tunnel = await TunnelTests.OpenTunnelAsync(sidecar.ProxyEndPoint, origin.Port);

        sidecar.Signal("TERM");

        Assert.Empty(await tunnel.ReadToEndAsync(timeoutMs: 30_000));
        Assert.Equal(0, await sidecar.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("drain timeout: closing 1 connections", sidecar.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sighup_does_not_stop_the_sidecar()
    {
        using var dir = new TempDir();
        await using var sidecar = await SidecarProcess.StartAsync(dir.Path);

        sidecar.Signal("HUP");
        await sidecar.WaitForOutputAsync(l => l.Contains("SIGHUP", StringComparison.Ordinal), TimeSpan.FromSeconds(30));

        using var http = new HttpClient();
        Assert.Equal("ok\n", await http.GetStringAsync(new Uri($"http://{sidecar.StatsEndPoint}/healthz")));
        Assert.False(sidecar.Process.HasExited);
    }
}
