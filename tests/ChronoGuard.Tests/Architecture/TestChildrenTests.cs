using System.Diagnostics;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Architecture;

/// <summary>The suite's own hygiene: what a crashed test host left running is ended by the next run.</summary>
public sealed class TestChildrenTests
{
    [Fact]
    public void Children_of_a_host_that_is_gone_are_reaped_and_children_of_a_running_host_are_kept()
    {
        // A host that certainly runs no more: a process that exited and was waited for, named as it was.
        string gone;
        using (var host = Sleep())
        {
            gone = TestChildren.Identity(host.Id)!;
            host.Kill();
            host.WaitForExit();
        }

        using var orphan = Sleep();
        using var kept = Sleep();
        try
        {
            TestChildren.Track(orphan, gone);
            TestChildren.Track(kept, TestChildren.Identity(Environment.ProcessId)!);

            var killed = TestChildren.ReapOrphans();

            Assert.Contains(orphan.Id, killed);
            Assert.DoesNotContain(kept.Id, killed);
            Assert.True(orphan.WaitForExit(10_000), "the orphan still runs");
            Assert.False(kept.HasExited);
            Assert.DoesNotContain(orphan.Id, TestChildren.ReapOrphans());
        }
        finally
        {
            orphan.Kill();
            kept.Kill();
        }
    }

    [Fact]
    public void A_process_is_named_by_its_PID_and_start_time_and_one_that_is_gone_by_nothing()
    {
        var self = TestChildren.Identity(Environment.ProcessId);
        Assert.Matches($"^{Environment.ProcessId}-[0-9]+$", self);
        Assert.Equal(self, TestChildren.Identity(Environment.ProcessId));
        using var exited = Process.Start(new ProcessStartInfo("true") { UseShellExecute = false })!;
        exited.WaitForExit();
        Assert.Null(TestChildren.Identity(exited.Id));
    }

    private static Process Sleep() => Process.Start(new ProcessStartInfo("sleep", "600") { UseShellExecute = false })!;
}
