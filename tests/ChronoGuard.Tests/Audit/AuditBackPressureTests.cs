using ChronoGuard.Audit;
using ChronoGuard.Sidecar.Cli;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Audit;

/// <summary>
/// A full ring is waited out asynchronously: <see cref="AuditWriter.WaitForRoomAsync"/> parks the producer
/// until the writer frees slots (or faults, or stops), and costs nothing while there is room.
/// </summary>
public sealed class AuditBackPressureTests
{
    private static AuditRecord Record(int i)
    {
        var r = default(AuditRecord);
        r.Kind = AuditKind.Decision;
        r.Set(AuditText.Host, $"h{i}.example.org");
        r.Set(AuditText.Decision, "ALLOW");
        return r;
    }

    /// <summary>Holds the writer thread at the top of its loop until disposed; the ring then fills.</summary>
    private sealed class HeldWriter : IDisposable
    {
        private readonly ManualResetEventSlim _held = new();
        private readonly ManualResetEventSlim _release = new();

        public HeldWriter(AuditWriter writer)
        {
            writer.LoopHook = () =>
            {
                _held.Set();
                _release.Wait();
            };
            var r = Record(-1);
            writer.Append(ref r);
            Assert.True(_held.Wait(TimeSpan.FromSeconds(30)), "the writer thread never reached its loop");
            writer.LoopHook = null;
        }

        public void Dispose() => _release.Set();
    }

    private static int Fill(AuditWriter writer)
    {
        var n = 0;
        var r = Record(0);
        while (writer.TryAppend(ref r, out _))
        {
            r = Record(++n);
        }

        return n;
    }

    private static AuditWriter Open(string dir) =>
        // The watchdog must not call a held writer stuck while a test holds it.
        AuditWriter.Open(new AuditOptions { Directory = dir, QueueCapacity = 16, CommitTimeoutMs = 600_000, CommitIntervalMs = 1 }, TimeProvider.System);

    [Fact]
    public async Task Producers_waiting_for_room_in_a_full_ring_are_released_when_the_writer_drains_and_every_record_is_written()
    {
        using var dir = new TempDir();
        var auditDir = Path.Combine(dir.Path, "audit");
        long last;
        using (var writer = Open(auditDir))
        {
            Task[] waits;
            using (new HeldWriter(writer))
            {
                Fill(writer);
                waits = [writer.WaitForRoomAsync().AsTask(), writer.WaitForRoomAsync().AsTask(), writer.WaitForRoomAsync().AsTask()];
                Assert.All(waits, w => Assert.False(w.IsCompleted));
                Assert.True(writer.BackPressureTotal >= 3);
            }

            var appended = new List<long>();
            for (var i = 0; i < waits.Length; i++)
            {
                await waits[i].WaitAsync(TimeSpan.FromSeconds(30));
                var r = Record(1000 + i);
                appended.Add(writer.Append(ref r));
            }

            // A second full ring reuses the pooled waiters and is released the same way.
            using (new HeldWriter(writer))
            {
                Fill(writer);
                waits = [writer.WaitForRoomAsync().AsTask(), writer.WaitForRoomAsync().AsTask()];
                Assert.All(waits, w => Assert.False(w.IsCompleted));
            }

            foreach (var wait in waits)
            {
                await wait.WaitAsync(TimeSpan.FromSeconds(30));
            }

            last = appended[^1];
            Assert.True(await writer.WaitDurableAsync(last).AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
        }

        var stdout = new StringWriter();
        Assert.True(VerifyCommand.Run(["--audit-dir", auditDir], stdout, new StringWriter()) == 0, stdout.ToString());
    }

    [Fact]
    public async Task A_producer_waiting_for_room_is_released_when_the_writer_stops()
    {
        using var dir = new TempDir();
        var writer = Open(Path.Combine(dir.Path, "audit"));
        var held = new HeldWriter(writer);
        Fill(writer);
        var wait = writer.WaitForRoomAsync().AsTask();
        Assert.False(wait.IsCompleted);
        var stopping = Task.Run(writer.Dispose);
        // Released by the stop itself, while the writer thread is still held: the append then counts it unrecorded.
        await wait.WaitAsync(TimeSpan.FromSeconds(30));
        var r = Record(1);
        Assert.Equal(AuditWriter.Unrecorded, writer.Append(ref r));
        held.Dispose();
        await stopping.WaitAsync(TimeSpan.FromSeconds(60));
    }

    [Fact]
    public void Waiting_for_room_in_a_ring_with_room_allocates_nothing()
    {
        using var dir = new TempDir();
        using var writer = Open(Path.Combine(dir.Path, "audit"));
        Assert.Equal(0, Allocations.Least(() => Consume(writer.WaitForRoomAsync())));
    }

    private static void Consume(ValueTask wait)
    {
        Assert.True(wait.IsCompletedSuccessfully);
        wait.GetAwaiter().GetResult();
    }
}
