using ChronoGuard.Audit;
using ChronoGuard.Sidecar.Cli;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Audit;

/// <summary>The writer on a disk that fails under it: faults are declared, nothing fails open, and it recovers.</summary>
[Collection(RunAlone.Name)]
public sealed class AuditWriterFaultTests
{
    private static AuditRecord Record(int i)
    {
        var r = default(AuditRecord);
        r.Kind = AuditKind.Decision;
        r.Set(AuditText.Host, $"h{i}.example.org");
        r.Set(AuditText.Decision, "ALLOW");
        r.Set(AuditText.Path, new string('p', 400));
        return r;
    }

    private static async Task PollAsync(Func<bool> done, string what, int seconds = 30)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
        while (!done())
        {
            await Task.Delay(10, deadline.Token).ContinueWith(t => { if (t.IsCanceled) { throw new TimeoutException(what); } }, TaskScheduler.Default);
        }
    }

    [RootFact]
    public async Task A_full_disk_faults_the_writer_refuses_instead_of_failing_open_and_it_recovers_when_space_is_freed_without_losing_a_seq()
    {
        using var disk = new Tmpfs("4m");
        var auditDir = Path.Combine(disk.Path, "audit");
        var faults = new List<string>();
        var options = new AuditOptions { Directory = auditDir, Durability = "commit-before-forward", SegmentSizeBits = 20, QueueCapacity = 64, CommitTimeoutMs = 3000 };
        using (var writer = AuditWriter.Open(options, TimeProvider.System))
        {
            writer.OnFault = c => { lock (faults) { faults.Add(c); } };
            var appended = 0;
            var r = Record(0);
            Assert.True(await writer.WaitDurableAsync(writer.Append(ref r)));
            var filler = disk.Fill();

            // Appending on a full disk: every wait ends (true or false), none hangs, and the writer faults.
            while (!writer.Faulted && appended < 20_000)
            {
                r = Record(++appended);
                var seq = writer.Append(ref r);
                var durable = await writer.WaitDurableAsync(seq).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
                if (!durable)
                {
                    break;
                }
            }

            await PollAsync(() => writer.Faulted, "the writer never faulted on a full disk");
            Assert.Equal(AuditAdmission.Refuse, writer.Admit());
            Assert.False(writer.Healthy);
            r = Record(-1);
            Assert.False(await writer.WaitDurableAsync(writer.Append(ref r)).AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
            Assert.False(await writer.WaitDurableAsync(AuditWriter.Unrecorded));
            await PollAsync(() => { lock (faults) { return faults.Count > 0; } }, "the fault was never reported");
            lock (faults)
            {
                Assert.Single(faults);
            }

            File.Delete(filler);
            await PollAsync(() => !writer.Faulted, "the writer never recovered after space was freed");
            Assert.Equal(AuditAdmission.Open, writer.Admit());
            r = Record(-2);
            Assert.True(await writer.WaitDurableAsync(writer.Append(ref r)).AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
            Assert.Equal(1, writer.FaultsTotal);
        }

        // Everything taken before, during and after the fault is in the chain, in order, with no gap.
        var stdout = new StringWriter();
        Assert.True(VerifyCommand.Run(["--audit-dir", auditDir], stdout, new StringWriter()) == 0, stdout.ToString());
        var entries = AuditReader.ReadDirectory(auditDir).Select(i => i.Entry!).ToList();
        Assert.Equal(Enumerable.Range(0, entries.Count).Select(i => (long)i), entries.Select(e => e.Seq));
        Assert.Contains(entries, e => e.Reason == "writer_fault");
    }

    [RootFact]
    public async Task An_unwritable_commit_directory_faults_the_writer_and_restoring_it_recovers()
    {
        using var disk = new Tmpfs("16m");
        var auditDir = Path.Combine(disk.Path, "audit");
        var options = new AuditOptions { Directory = auditDir, Durability = "commit-before-forward", QueueCapacity = 64, CommitTimeoutMs = 3000 };
        var commits = Path.Combine(auditDir, "log-commits");
        try
        {
            using (var writer = AuditWriter.Open(options, TimeProvider.System))
            {
                var r = Record(0);
                Assert.True(await writer.WaitDurableAsync(writer.Append(ref r)));
                // Root ignores permission bits; the immutable attribute stops it too.
                Tmpfs.Run("chattr", "+i", commits);
                // The metadata file is rewritten every 1,000 commits: go past that, one commit each.
                for (var i = 0; i < 3000 && !writer.Faulted; i++)
                {
                    r = Record(i);
                    await writer.WaitDurableAsync(writer.Append(ref r)).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
                }

                await PollAsync(() => writer.Faulted, "the writer never faulted with log-commits unwritable");
                Assert.Equal(AuditAdmission.Refuse, writer.Admit());
                Tmpfs.Run("chattr", "-i", commits);
                await PollAsync(() => !writer.Faulted, "the writer never recovered once log-commits was writable: " + writer.FaultCause);
                r = Record(-2);
                Assert.True(await writer.WaitDurableAsync(writer.Append(ref r)).AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
            }
        }
        finally
        {
            try
            {
                Tmpfs.Run("chattr", "-i", commits);
            }
            catch (InvalidOperationException)
            {
            }
        }

        var stdout = new StringWriter();
        Assert.True(VerifyCommand.Run(["--audit-dir", auditDir], stdout, new StringWriter()) == 0, stdout.ToString());
        var entries = AuditReader.ReadDirectory(auditDir).Select(i => i.Entry!).ToList();
        Assert.Equal(Enumerable.Range(0, entries.Count).Select(i => (long)i), entries.Select(e => e.Seq));
    }

    /// <summary>
    /// The stated policy for exceptions that are not I/O errors: a writer fault (refuse, report, recover),
    /// not the end of the process; nothing queued or in flight is lost.
    /// </summary>
    [Theory]
    [InlineData("commit-before-forward", "refuse", (int)AuditAdmission.Refuse)]
    [InlineData("batched", "forward", (int)AuditAdmission.ForwardUnrecorded)]
    public async Task An_unexpected_exception_inside_the_writer_loop_faults_the_writer_is_reported_and_recovers_without_losing_a_seq(string durability, string onFailure, int whileFaulted)
    {
        using var dir = new TempDir();
        var auditDir = Path.Combine(dir.Path, "audit");
        var faults = new List<string>();
        var recovered = new List<string>();
        var options = new AuditOptions { Directory = auditDir, Durability = durability, OnFailure = onFailure, QueueCapacity = 64, CommitIntervalMs = 1 };
        var seqs = new List<long>();
        // The writer recovers from this fault by itself within milliseconds (nothing is broken but the
        // hook), so the faulted state is held for the assertions: the first report, which the writer
        // thread makes before it may recover, waits until the test lets it go.
        var reported = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var release = new ManualResetEventSlim(false);
        using (var writer = AuditWriter.Open(options, TimeProvider.System))
        {
            try
            {
                writer.OnFault = c =>
                {
                    lock (faults)
                    {
                        faults.Add(c);
                    }

                    reported.TrySetResult();
                    release.Wait(TimeSpan.FromSeconds(30));
                };
                writer.OnRecovered = n => { lock (recovered) { recovered.Add(n); } };
                var r = Record(0);
                seqs.Add(writer.Append(ref r));
                Assert.True(await writer.WaitDurableAsync(seqs[0]).AsTask().WaitAsync(TimeSpan.FromSeconds(30)));

                var armed = 1;
                writer.LoopHook = () =>
                {
                    if (Volatile.Read(ref armed) != 0)
                    {
                        throw new InvalidCastException("injected into the writer loop");
                    }
                };
                for (var i = 1; i <= 10; i++)
                {
                    r = Record(i);
                    seqs.Add(writer.Append(ref r));
                }

                await reported.Task.WaitAsync(TimeSpan.FromSeconds(30));
                Assert.True(writer.Faulted);
                Assert.Equal((AuditAdmission)whileFaulted, writer.Admit());
                Assert.False(writer.Healthy);
                Assert.Contains("InvalidCastException", writer.FaultCause, StringComparison.Ordinal);
                Assert.False(await writer.WaitDurableAsync(seqs[^1]).AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
                r = Record(11);
                seqs.Add(writer.Append(ref r));

                // Disarmed before the writer may go on: its next pass after recovering runs the hook unarmed.
                Volatile.Write(ref armed, 0);
                release.Set();
                await PollAsync(() => !writer.Faulted, "the writer never recovered after the exception stopped");
                r = Record(12);
                seqs.Add(writer.Append(ref r));
                Assert.True(await writer.WaitDurableAsync(seqs[^1]).AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
                Assert.True(writer.Healthy);
                Assert.Equal(1, writer.FaultsTotal);
                lock (faults)
                {
                    // Reported once per episode, naming the exception and where it was thrown.
                    Assert.Equal(writer.FaultsTotal, faults.Count);
                    Assert.All(faults, f => Assert.Contains("failed unexpectedly (System.InvalidCastException: injected into the writer loop; at ", f, StringComparison.Ordinal));
                }
            }
            finally
            {
                // Never leave the writer thread held in OnFault past a failed assertion.
                release.Set();
            }
        }

        Assert.Equal(0, VerifyCommand.Run(["--audit-dir", auditDir], new StringWriter(), new StringWriter()));
        var entries = AuditReader.ReadDirectory(auditDir).Select(e => e.Entry!).ToList();
        Assert.All(seqs, s => Assert.Contains(entries, e => e.Seq == s));
        Assert.Contains(entries, e => e.Reason == "writer_fault" && e.Path!.Contains("InvalidCastException", StringComparison.Ordinal));
    }

    [RootFact]
    public async Task In_forward_mode_records_that_could_not_be_queued_are_counted_and_written_into_the_chain_after_recovery()
    {
        using var disk = new Tmpfs("4m");
        var auditDir = Path.Combine(disk.Path, "audit");
        var options = new AuditOptions { Directory = auditDir, OnFailure = "forward", SegmentSizeBits = 20, QueueCapacity = 8, CommitTimeoutMs = 500, CommitIntervalMs = 1 };
        using (var writer = AuditWriter.Open(options, TimeProvider.System))
        {
            var filler = disk.Fill();
            var i = 0;
            while (!writer.Faulted)
            {
                var r = Record(i++);
                writer.Append(ref r);
                if (i % 64 == 0)
                {
                    await Task.Delay(1);
                }
            }

            Assert.Equal(AuditAdmission.ForwardUnrecorded, writer.Admit());
            for (var k = 0; k < 100; k++)
            {
                ref var slot = ref writer.Claim(out var seq);
                slot.Kind = AuditKind.Decision;
                writer.Publish(seq);
            }

            Assert.True(writer.UnrecordedTotal > 0);
            File.Delete(filler);
            await PollAsync(() => !writer.Faulted, "never recovered");
            await PollAsync(() => AuditLogScan.Run(auditDir).Records > 0 && AuditReader.ReadDirectory(auditDir).Any(e => e.Entry!.Reason == "unrecorded"), "no unrecorded record");
            var note = AuditReader.ReadDirectory(auditDir).First(e => e.Entry!.Reason == "unrecorded").Entry!;
            Assert.StartsWith($"{writer.UnrecordedTotal} requests were not recorded between ", note.Path, StringComparison.Ordinal);
        }

        Assert.Equal(0, VerifyCommand.Run(["--audit-dir", auditDir], new StringWriter(), new StringWriter()));
    }

    [Fact]
    public async Task Log_files_deleted_under_a_running_writer_fault_it_and_the_next_start_is_refused()
    {
        using var dir = new TempDir();
        var auditDir = dir.File("audit");
        using (var writer = AuditWriter.Open(new AuditOptions { Directory = auditDir, QueueCapacity = 64 }, TimeProvider.System))
        {
            var r = Record(0);
            writer.Append(ref r);
            await PollAsync(() => writer.CommittedSeq >= 0, "never committed");
            var cause = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
            writer.OnFault = c => cause.TrySetResult(c);
            Directory.Delete(Path.Combine(auditDir, "log-commits"), recursive: true);
            File.Delete(Path.Combine(auditDir, "audit.log.0"));
            Assert.Contains("deleted under the running writer", await cause.Task.WaitAsync(TimeSpan.FromSeconds(30)), StringComparison.Ordinal);
            Assert.True(writer.Faulted);
            Assert.Equal(AuditAdmission.Refuse, writer.Admit());
        }

        var ex = Assert.Throws<InvalidDataException>(() => AuditWriter.Open(new AuditOptions { Directory = auditDir }, TimeProvider.System).Dispose());
        Assert.Contains("the directory held a chain up to seq", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_second_writer_on_the_same_directory_is_refused_naming_the_holder_and_readers_go_on()
    {
        using var dir = new TempDir();
        await using var first = await SidecarProcess.StartAsync(dir.Path);
        var (code, stderr) = await SidecarRun.RunToExitAsync(dir.Path);
        Assert.Equal(2, code);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains($"another chronoguard writer holds this audit directory (pid {first.Process.Id}", line, StringComparison.Ordinal);
        Assert.Throws<IOException>(() => AuditWriter.Open(new AuditOptions { Directory = dir.File("audit") }, TimeProvider.System));

        // verify and export read beside the running writer without its lock.
        var stdout = new StringWriter();
        Assert.True(VerifyCommand.Run(["--audit-dir", dir.File("audit")], stdout, new StringWriter()) == 0, stdout.ToString());
        var export = new StringWriter();
        Assert.Equal(0, ExportCommand.Run(["--audit-dir", dir.File("audit")], export, new StringWriter()));
        Assert.Contains("\"start\"", export.ToString(), StringComparison.Ordinal);
        first.Signal("TERM");
        Assert.Equal(0, await first.WaitForExitAsync(TimeSpan.FromSeconds(30)));

        // The first writer's chain is intact: start and stop, nothing from the refused one.
        var reasons = AuditReader.ReadDirectory(dir.File("audit")).Select(i => i.Entry!.Reason).ToList();
        Assert.Equal("start", reasons[0]);
        Assert.Equal("stop", reasons[^1]);
        Assert.Single(reasons, r => r == "start");
    }

    /// <summary>
    /// The wake-up handshake: producers publish and then read the writer's sleeping flag, the writer
    /// sets the flag and then reads the ring. With release/acquire only, both loads may pass the
    /// stores (store-load reordering, allowed even by x86-TSO) and each side misses the other: the
    /// writer sleeps with a record in the ring. The writer's idle sleep is set to a minute and these
    /// producers never wake it any other way, so a lost wake-up leaves a record uncommitted past the
    /// 10 s commit deadline and the watchdog declares a fault; the test asserts none did. On x86 the
    /// window is a few nanoseconds, so the old code fails this only sometimes; it cannot pass falsely.
    /// </summary>
    [Fact]
    public async Task Many_producers_publishing_one_record_at_a_time_never_leave_the_writer_asleep_with_work()
    {
        // On a tmpfs when root (fsync costs nothing, so only a lost wake-up can be slow).
        using var dir = new TempDir();
        using var disk = Environment.IsPrivilegedProcess ? new Tmpfs("16m") : null;
        // The idle writer sleeps 60 s unless woken, so a lost wake-up is a stall the 10 s watchdog reports.
        var options = new AuditOptions { Directory = Path.Combine(disk?.Path ?? dir.Path, "audit"), QueueCapacity = 1024, CommitIntervalMs = 1, CommitTimeoutMs = 10_000, IdleWaitMs = 60_000 };
        using var writer = AuditWriter.Open(options, TimeProvider.System);
        var producers = Enumerable.Range(0, 4).Select(p => Task.Run(() =>
        {
            for (var i = 0; i < 400; i++)
            {
                ref var slot = ref writer.Claim(out var seq);
                slot.Kind = AuditKind.Decision;
                writer.Publish(seq);
                // Wait for the commit without waking the writer (WaitDurableAsync would).
                var spin = default(SpinWait);
                while (writer.CommittedSeq < seq && !writer.Faulted)
                {
                    spin.SpinOnce(sleep1Threshold: 10);
                }

                Assert.False(writer.Faulted, $"the writer slept with seq {seq} in the ring: {writer.FaultCause}");
            }
        })).ToArray();
        await Task.WhenAll(producers);
        Assert.Equal(0, writer.FaultsTotal);
        Assert.Equal(1599, writer.CommittedSeq);
    }
}
