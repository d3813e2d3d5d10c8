using System.Net;
using System.Net.Sockets;
using ChronoGuard.Net;
using ChronoGuard.Stats;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Stats;

public sealed class StatsServerTests
{
    [Fact]
    public async Task Accept_errors_back_off_exponentially_to_one_second_and_are_logged_once_per_burst()
    {
        var timers = new TimerTimeProvider();
        var log = new ListLogger();
        var listener = ListenSocket.Open(new IPEndPoint(IPAddress.Loopback, 0), backlog: 16);
        var server = new StatsServer(log, timers);
        server.Start(listener);

        // On Linux a shut-down listening socket fails every accept (EINVAL) without being disposed: a
        // persistent accept error, like EMFILE during an fd flood, on a real socket.
        listener.Shutdown(SocketShutdown.Both);

        int[] expectedMs = [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000];
        for (var i = 0; i < expectedMs.Length; i++)
        {
            // The old loop retried at once and never waited: no timer would ever be created.
            var wait = await timers.NextTimerAsync(TimeSpan.FromSeconds(10));
            Assert.Equal(TimeSpan.FromMilliseconds(expectedMs[i]), wait.DueTime);
            // Parked on that timer: exactly one failed accept per wait, none while it has not fired.
            Assert.Equal(i + 1, server.AcceptFailures);
            wait.Fire();
        }

        Assert.Single(log.Lines, l => l.Contains("accept failing (InvalidArgument)", StringComparison.Ordinal));

        // Disposing while the loop waits out a backoff ends it without the timer firing.
        var parked = await timers.NextTimerAsync(TimeSpan.FromSeconds(10));
        await server.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(expectedMs.Length + 1, server.AcceptFailures);
        Assert.True(parked.Disposed);
    }

    [Fact]
    public void The_backoff_doubles_from_5_ms_to_a_1_s_ceiling_and_restarts_after_a_success()
    {
        var backoff = new AcceptBackoff();

        Assert.Equal(TimeSpan.FromMilliseconds(5), backoff.Fail(1000, out var first));
        Assert.True(first);
        Assert.Equal(TimeSpan.FromMilliseconds(10), backoff.Fail(1000, out var second));
        Assert.False(second);
        for (var i = 0; i < 20; i++)
        {
            Assert.True(backoff.Fail(1000, out _) <= AcceptBackoff.Max);
        }

        Assert.Equal(AcceptBackoff.Max, backoff.Fail(1000, out _));
        Assert.Equal(23, backoff.Succeed());
        Assert.Equal(0, backoff.Succeed());
        Assert.Equal(TimeSpan.FromMilliseconds(5), backoff.Fail(2000, out var again));
        Assert.False(again);
    }

    /// <summary>Under a descriptor shortage accepts alternate between success and failure: one episode, one log line.</summary>
    [Fact]
    public void Bursts_closer_than_the_episode_gap_are_one_episode_logged_once()
    {
        var backoff = new AcceptBackoff();
        var logged = 0;
        for (var t = 0L; t < 60_000; t += 100)
        {
            backoff.Fail(t, out var episode);
            logged += episode ? 1 : 0;
            backoff.Succeed();
        }

        Assert.Equal(1, logged);
        backoff.Fail(60_000 + AcceptBackoff.EpisodeGapMs + 1, out var later);
        Assert.True(later);
    }
}
