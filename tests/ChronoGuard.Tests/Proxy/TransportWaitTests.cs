using System.Net;
using System.Net.Sockets;
using ChronoGuard.Net;

namespace ChronoGuard.Tests.Proxy;

/// <summary>
/// The silence verdict of a transparent connection (Transparent:FirstBytesMs) on a real loopback pair.
/// The clock here has run out before the wait even starts, the worst a busy machine can do: whatever
/// already arrived must still count as the peer having spoken.
/// </summary>
public sealed class TransportWaitTests
{
    /// <summary>A clock whose every timer has fired by the time it is made.</summary>
    private sealed class ExpiredClock : TimeProvider
    {
        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            callback(state);
            return new Fired();
        }

        private sealed class Fired : ITimer
        {
            public bool Change(TimeSpan dueTime, TimeSpan period) => false;

            public void Dispose()
            {
            }

            public ValueTask DisposeAsync() => ValueTask.CompletedTask;
        }
    }

    private static async Task<(Socket Peer, Socket Ours)> PairAsync()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var peer = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await peer.ConnectAsync(listener.LocalEndPoint!);
        return (peer, await listener.AcceptAsync());
    }

    [Theory]
    [InlineData("bytes")]
    [InlineData("fin")]
    [InlineData("reset")]
    public async Task A_peer_whose_bytes_or_close_arrived_before_the_verdict_is_not_called_silent(string what)
    {
        var (peer, ours) = await PairAsync();
        using var transport = new Transport(ours);
        switch (what)
        {
            case "bytes":
                await peer.SendAsync("\u0016\u0003\u0001"u8.ToArray());
                break;
            case "fin":
                peer.Shutdown(SocketShutdown.Send);
                break;
            default:
                peer.LingerState = new LingerOption(true, 0);
                peer.Close();
                break;
        }

        // Wait for the arrival itself (a readability signal), not for time.
        Assert.True(ours.Poll(TimeSpan.FromSeconds(30), SelectMode.SelectRead));
        Assert.True(await transport.WaitForBytesAsync(TimeSpan.FromSeconds(1), new ExpiredClock()));
        peer.Dispose();
    }

    [Fact]
    public async Task A_peer_that_sent_nothing_is_silent_when_the_clock_runs_out_and_its_later_bytes_are_still_read()
    {
        var (peer, ours) = await PairAsync();
        using var _ = peer;
        using var transport = new Transport(ours);
        Assert.False(await transport.WaitForBytesAsync(TimeSpan.FromSeconds(1), new ExpiredClock()));

        // The cancelled wait leaves the connection as it was: a server-speaks-first client talks later.
        await peer.SendAsync("SSH-2.0-x\r\n"u8.ToArray());
        var buffer = new byte[16];
        Assert.Equal(11, await transport.ReceiveAsync(buffer));
    }

    [Fact]
    public async Task A_peer_that_speaks_during_the_wait_ends_it_before_the_clock()
    {
        var (peer, ours) = await PairAsync();
        using var _ = peer;
        using var transport = new Transport(ours);
        var wait = transport.WaitForBytesAsync(TimeSpan.FromMinutes(5), TimeProvider.System);
        Assert.False(wait.IsCompleted);
        await peer.SendAsync(new byte[] { 22 });
        Assert.True(await wait);
    }
}
