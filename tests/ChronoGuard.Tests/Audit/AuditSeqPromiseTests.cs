using System.Globalization;
using System.Net;
using ChronoGuard.Audit;
using ChronoGuard.Sidecar.Cli;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Audit;

/// <summary>
/// SPEC §5, "a seq is a promise", through the real binary on a disk that fills up: every
/// <c>X-ChronoGuard-Audit-Seq</c> a client saw is in the chain (as the answer it got) or inside a range
/// a chained <c>system</c> record names lost; a seq is never given to another record after a restart;
/// a stop that could not commit exits non-zero with one line; every 200 forwarded in refuse mode has
/// its record; commit files are never left empty; the writer recovers by itself.
/// </summary>
[Collection(RunAlone.Name)]
public sealed class AuditSeqPromiseTests
{
    [RootFact]
    public async Task A_stop_on_a_full_disk_exits_non_zero_and_the_next_start_names_every_seq_it_handed_out_and_never_reuses_one()
    {
        using var disk = new Tmpfs("4m");
        var auditDir = Path.Combine(disk.Path, "audit");
        var seen = new Traffic();
        string filler;
        await using (var sidecar = await SidecarProcess.StartAsync(disk.Path, environment: Settings("batched")))
        {
            await seen.SendAsync(sidecar, 20);
            Assert.Equal(20, seen.Ok);
            filler = disk.Fill();
            await seen.UntilFaultedAsync(sidecar);
            // Refused while faulted: each 503 carries a seq the writer still holds in its ring.
            await seen.SendAsync(sidecar, 30);
            Assert.Contains(seen.Seqs, s => s.Value == 503);

            sidecar.Signal("TERM");
            Assert.Equal(CommandLine.CheckFailed, await sidecar.WaitForExitAsync(TimeSpan.FromSeconds(60)));
            var line = Assert.Single(sidecar.Output.Split('\n'), l => l.StartsWith("audit: ", StringComparison.Ordinal));
            Assert.Contains("were handed out and not committed", line, StringComparison.Ordinal);
            Assert.DoesNotContain("\"stopped\"", sidecar.Output, StringComparison.Ordinal);
        }

        // Every commit file FASTER relies on is whole, though the disk was full.
        AssertCommitFilesWhole(auditDir);
        File.Delete(filler);
        await using (var again = await SidecarProcess.StartAsync(disk.Path, environment: Settings("batched")))
        {
            await seen.SendAsync(again, 10);
            again.Signal("TERM");
            Assert.Equal(0, await again.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        }

        var chain = AssertValidChain(auditDir);
        var lost = LostRanges(chain);
        Assert.NotEmpty(lost);
        seen.AssertEverySeqKept(chain, lost);
        // Batched: a 200 forwarded before the fault was declared has its record in the ring or in
        // FASTER's unflushed pages; on a disk that never came back it can only be named lost.
        var recorded = chain.Count(e => e.Kind == AuditKind.Decision && e.Status == 200 && e.Path == "/healthz");
        Assert.True(seen.Ok <= recorded + lost.Sum(r => r.Last - r.First + 1), $"{seen.Ok} answered 200, {recorded} recorded, lost {string.Join(',', lost)}");
    }

    [RootFact]
    public async Task A_writer_on_a_full_disk_recovers_by_itself_when_space_returns_and_every_answer_has_its_record()
    {
        using var disk = new Tmpfs("4m");
        var auditDir = Path.Combine(disk.Path, "audit");
        var seen = new Traffic();
        var settings = Settings("batched");
        // A small ring: refusals past it cannot be queued one by one and are counted instead.
        settings["CHRONOGUARD__Audit__QueueCapacity"] = "64";
        await using (var sidecar = await SidecarProcess.StartAsync(disk.Path, environment: settings))
        {
            await seen.SendAsync(sidecar, 20);
            var filler = disk.Fill();
            await seen.UntilFaultedAsync(sidecar);
            await seen.SendAsync(sidecar, 150);
            Assert.True(seen.RefusedWithoutSeq > 0, "the ring never filled");

            File.Delete(filler);
            await Traffic.UntilReadyAsync(sidecar);
            await seen.SendAsync(sidecar, 20);
            sidecar.Signal("TERM");
            Assert.True(await sidecar.WaitForExitAsync(TimeSpan.FromSeconds(60)) == 0, sidecar.Output);
            Assert.DoesNotContain(sidecar.Output.Split('\n'), l => l.StartsWith("audit: ", StringComparison.Ordinal));
        }

        var chain = AssertValidChain(auditDir);
        Assert.Empty(LostRanges(chain));
        seen.AssertEverySeqKept(chain, []);
        // Refuse mode: no request reached the origin without its record.
        AssertEveryOkRecorded(seen, chain);
        Assert.Contains(chain, e => e.Kind == AuditKind.System && e.Reason == "writer_fault");
        var counted = chain.Where(e => e.Kind == AuditKind.System && e.Reason == "unrecorded")
            .Sum(e => long.Parse(e.Path.AsSpan(0, e.Path.IndexOf(' ', StringComparison.Ordinal)), CultureInfo.InvariantCulture));
        Assert.True(counted >= seen.RefusedWithoutSeq, $"{seen.RefusedWithoutSeq} refusals without a record, {counted} counted in the chain");
    }

    [RootFact]
    public async Task Commit_before_forward_on_a_full_disk_leaves_no_empty_commit_file_and_starts_again_without_repair()
    {
        using var disk = new Tmpfs("4m");
        var auditDir = Path.Combine(disk.Path, "audit");
        var seen = new Traffic();
        string filler;
        await using (var sidecar = await SidecarProcess.StartAsync(disk.Path, environment: Settings("commit-before-forward")))
        {
            await seen.SendAsync(sidecar, 20);
            filler = disk.Fill();
            await seen.UntilFaultedAsync(sidecar);
            await seen.SendAsync(sidecar, 10);
            AssertCommitFilesWhole(auditDir);
            sidecar.Signal("TERM");
            var code = await sidecar.WaitForExitAsync(TimeSpan.FromSeconds(60));
            Assert.True(code is 0 or CommandLine.CheckFailed, $"exit {code}");
        }

        AssertCommitFilesWhole(auditDir);
        File.Delete(filler);
        await using (var again = await SidecarProcess.StartAsync(disk.Path, environment: Settings("commit-before-forward")))
        {
            await seen.SendAsync(again, 10);
            again.Signal("TERM");
            Assert.Equal(0, await again.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        }

        var chain = AssertValidChain(auditDir);
        seen.AssertEverySeqKept(chain, LostRanges(chain));
        AssertEveryOkRecorded(seen, chain);
    }

    [RootFact]
    public async Task A_read_only_audit_directory_faults_the_writer_which_recovers_when_it_is_writable_again_and_records_the_episode()
    {
        using var disk = new Tmpfs("16m");
        var auditDir = Path.Combine(disk.Path, "audit");
        var seen = new Traffic();
        try
        {
            await using (var sidecar = await SidecarProcess.StartAsync(disk.Path, environment: Settings("commit-before-forward")))
            {
                await seen.SendAsync(sidecar, 10);
                // Root ignores chmod, and the kernel will not remount read-only under open writers:
                // immutable makes the directory and every file in it refuse writes, creations and renames.
                Tmpfs.Run("chattr", "-R", "+i", auditDir);
                await seen.UntilFaultedAsync(sidecar);
                await seen.SendAsync(sidecar, 10);
                Tmpfs.Run("chattr", "-R", "-i", auditDir);
                await Traffic.UntilReadyAsync(sidecar);
                await seen.SendAsync(sidecar, 10);
                sidecar.Signal("TERM");
                Assert.True(await ExitCodeAsync(sidecar) == 0, sidecar.Output);
            }

            var chain = AssertValidChain(auditDir);
            Assert.Empty(LostRanges(chain));
            seen.AssertEverySeqKept(chain, []);
            AssertEveryOkRecorded(seen, chain);
            Assert.Contains(chain, e => e.Kind == AuditKind.System && e.Reason == "writer_fault" && e.Path.Contains("recovered", StringComparison.Ordinal));

            // Stopped while still read-only: it cannot commit, and says so; the next start names what it lost.
            await using (var sidecar = await SidecarProcess.StartAsync(disk.Path, environment: Settings("commit-before-forward")))
            {
                await seen.SendAsync(sidecar, 10);
                Tmpfs.Run("chattr", "-R", "+i", auditDir);
                await seen.UntilFaultedAsync(sidecar);
                await seen.SendAsync(sidecar, 10);
                sidecar.Signal("TERM");
                Assert.True(await ExitCodeAsync(sidecar) == CommandLine.CheckFailed, sidecar.Output);
                Assert.Single(sidecar.Output.Split('\n'), l => l.StartsWith("audit: seqs ", StringComparison.Ordinal));
            }
        }
        finally
        {
            Tmpfs.Run("chattr", "-R", "-i", auditDir);
        }

        await using (var again = await SidecarProcess.StartAsync(disk.Path, environment: Settings("commit-before-forward")))
        {
            again.Signal("TERM");
            Assert.Equal(0, await again.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        }

        var after = AssertValidChain(auditDir);
        var lost = LostRanges(after);
        Assert.NotEmpty(lost);
        seen.AssertEverySeqKept(after, lost);
    }

    [RootFact]
    public async Task A_commit_file_that_cannot_be_replaced_is_a_writer_fault_not_a_silent_success()
    {
        using var disk = new Tmpfs("16m");
        var auditDir = Path.Combine(disk.Path, "audit");
        var commits = Path.Combine(auditDir, FasterLogFiles.CommitsFolder);
        var seen = new Traffic();
        try
        {
            await using (var sidecar = await SidecarProcess.StartAsync(disk.Path, environment: Settings("commit-before-forward")))
            {
                await seen.SendAsync(sidecar, 10);
                // Immutable (root ignores chmod): no commit file in it can be created, replaced or removed.
                Tmpfs.Run("chattr", "+i", commits);
                // FASTER rewrites the commit file every 1,000 commits; one request is one commit here.
                await seen.UntilFaultedAsync(sidecar);
                // The fault names the commit file (the logger writes asynchronously: wait for its line).
                await sidecar.WaitForOutputAsync(l => l.Contains("could not be written", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
                Tmpfs.Run("chattr", "-i", commits);
                await Traffic.UntilReadyAsync(sidecar);
                await seen.SendAsync(sidecar, 10);
                sidecar.Signal("TERM");
                Assert.True(await ExitCodeAsync(sidecar) == 0, sidecar.Output);
            }
        }
        finally
        {
            Tmpfs.Run("chattr", "-i", commits);
        }

        AssertCommitFilesWhole(auditDir);
        await using (var again = await SidecarProcess.StartAsync(disk.Path, environment: Settings("commit-before-forward")))
        {
            again.Signal("TERM");
            Assert.Equal(0, await again.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        }

        var chain = AssertValidChain(auditDir);
        seen.AssertEverySeqKept(chain, LostRanges(chain));
        AssertEveryOkRecorded(seen, chain);
        Assert.Contains(chain, e => e.Kind == AuditKind.System && e.Reason == "writer_fault");
    }

    [Fact]
    public async Task After_kill_9_the_next_start_never_gives_a_seq_a_client_saw_to_another_record()
    {
        using var dir = new TempDir();
        var auditDir = Path.Combine(dir.Path, "audit");
        var seen = new Traffic();
        var settings = Settings("batched");
        // Nothing is committed before the kill: every seq handed out is at stake.
        settings["CHRONOGUARD__Audit__CommitIntervalMs"] = "60000";
        await using (var sidecar = await SidecarProcess.StartAsync(dir.Path, environment: settings))
        {
            await seen.SendUnreachableAsync(sidecar, 20);
            sidecar.Signal("KILL");
            await sidecar.WaitForExitAsync(TimeSpan.FromSeconds(30));
        }

        await using (var again = await SidecarProcess.StartAsync(dir.Path, environment: Settings("batched")))
        {
            await seen.SendUnreachableAsync(again, 20);
            again.Signal("TERM");
            Assert.True(await again.WaitForExitAsync(TimeSpan.FromSeconds(60)) == 0, again.Output);
        }

        Assert.Equal(40, seen.Seqs.Count);
        var chain = AssertValidChain(auditDir);
        seen.AssertEverySeqKept(chain, LostRanges(chain));
    }

    /// <summary>The exit code; a stop that hangs fails with the output so far.</summary>
    private static async Task<int> ExitCodeAsync(SidecarProcess sidecar)
    {
        try
        {
            return await sidecar.WaitForExitAsync(TimeSpan.FromSeconds(60));
        }
        catch (OperationCanceledException)
        {
            Assert.Fail("the stop hung: " + sidecar.Output);
            throw;
        }
    }

    private static Dictionary<string, string> Settings(string durability) => new()
    {
        ["CHRONOGUARD__Audit__Durability"] = durability,
        ["CHRONOGUARD__Audit__SegmentSizeBits"] = "20",
        ["CHRONOGUARD__Audit__CommitTimeoutMs"] = "1000",
        ["CHRONOGUARD__Proxy__DrainTimeoutMs"] = "3000",
    };

    /// <summary>
    /// No 200 lacks its record. (Not equality: under commit-before-forward a request whose durable wait
    /// failed is answered 503 and still has the ALLOW record it was given before: issue 15 §4.)
    /// </summary>
    private static void AssertEveryOkRecorded(Traffic seen, List<AuditEntry> chain)
    {
        var recorded = chain.Count(e => e.Kind == AuditKind.Decision && e.Status == 200 && e.Path == "/healthz");
        Assert.True(recorded >= seen.Ok, $"{seen.Ok} answered 200, {recorded} ALLOW 200 records");
    }

    private static void AssertCommitFilesWhole(string auditDir)
    {
        var commits = Path.Combine(auditDir, FasterLogFiles.CommitsFolder);
        foreach (var file in Directory.Exists(commits) ? Directory.GetFiles(commits) : [])
        {
            Assert.True(new FileInfo(file).Length > 0, $"{file} is empty");
        }
    }

    private static List<AuditEntry> AssertValidChain(string auditDir)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        Assert.True(VerifyCommand.Run(["--audit-dir", auditDir], stdout, stderr) == 0, stdout + " " + stderr);
        return AuditReader.ReadDirectory(auditDir).Select(i => i.Entry!).ToList();
    }

    /// <summary>The seq ranges named by chained <c>reason=lost</c> records.</summary>
    private static List<(long First, long Last)> LostRanges(List<AuditEntry> chain)
    {
        var ranges = new List<(long, long)>();
        foreach (var e in chain.Where(e => e.Kind == AuditKind.System && e.Reason == "lost"))
        {
            var text = e.Path["seqs ".Length..e.Path.IndexOf(':', StringComparison.Ordinal)];
            var dots = text.IndexOf("..", StringComparison.Ordinal);
            ranges.Add((long.Parse(text[..dots], CultureInfo.InvariantCulture), long.Parse(text[(dots + 2)..], CultureInfo.InvariantCulture)));
        }

        return ranges;
    }

    /// <summary>Requests through the proxy to the sidecar's own stats endpoint, and what each answer promised.</summary>
    private sealed class Traffic
    {
        public Dictionary<long, int> Seqs { get; } = [];

        public int Ok { get; private set; }

        public int RefusedWithoutSeq { get; private set; }

        public async Task SendAsync(SidecarProcess sidecar, int count)
        {
            using var proxied = new HttpClient(new SocketsHttpHandler { Proxy = new WebProxy($"http://{sidecar.ProxyEndPoint}"), UseProxy = true }) { Timeout = TimeSpan.FromSeconds(20) };
            var target = new Uri($"http://{sidecar.StatsEndPoint}/healthz");
            for (var i = 0; i < count; i++)
            {
                await SendOneAsync(proxied, target);
            }
        }

        /// <summary>Requests to a closed loopback port: each is refused by the proxy with the seq of its record.</summary>
        public async Task SendUnreachableAsync(SidecarProcess sidecar, int count)
        {
            using var proxied = new HttpClient(new SocketsHttpHandler { Proxy = new WebProxy($"http://{sidecar.ProxyEndPoint}"), UseProxy = true }) { Timeout = TimeSpan.FromSeconds(20) };
            for (var i = 0; i < count; i++)
            {
                await SendOneAsync(proxied, new Uri("http://127.0.0.1:1/closed"));
            }
        }

        /// <summary>Traffic until readiness drops (the writer declared its fault); bounded.</summary>
        public async Task UntilFaultedAsync(SidecarProcess sidecar)
        {
            using var direct = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            using var proxied = new HttpClient(new SocketsHttpHandler { Proxy = new WebProxy($"http://{sidecar.ProxyEndPoint}"), UseProxy = true }) { Timeout = TimeSpan.FromSeconds(20) };
            var target = new Uri($"http://{sidecar.StatsEndPoint}/healthz");
            var readyz = new Uri($"http://{sidecar.StatsEndPoint}/readyz");
            for (var i = 0; (await direct.GetAsync(readyz)).StatusCode == HttpStatusCode.OK; i++)
            {
                Assert.True(i < 100_000, "the writer never faulted on a full disk");
                await SendOneAsync(proxied, target);
            }
        }

        public static async Task UntilReadyAsync(SidecarProcess sidecar)
        {
            using var direct = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            var readyz = new Uri($"http://{sidecar.StatsEndPoint}/readyz");
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while ((await direct.GetAsync(readyz)).StatusCode != HttpStatusCode.OK)
            {
                Assert.True(DateTime.UtcNow < deadline, "the writer never recovered after space returned");
                // Polling the readiness the writer reports: its retry backoff is up to 5 s.
                await Task.Delay(50);
            }
        }

        private async Task SendOneAsync(HttpClient proxied, Uri target)
        {
            using var response = await proxied.GetAsync(target);
            var status = (int)response.StatusCode;
            Assert.True(status is 200 or 502 or 503, $"status {status}");
            if (response.Headers.TryGetValues("X-ChronoGuard-Audit-Seq", out var values))
            {
                Seqs.Add(long.Parse(values.Single(), CultureInfo.InvariantCulture), status);
            }
            else if (status == 503)
            {
                RefusedWithoutSeq++;
            }

            if (status == 200)
            {
                Ok++;
            }
        }

        /// <summary>
        /// Each seq seen is the decision record of that answer, or inside a named lost range; never another
        /// record. A request allowed and recorded (or let through by observe mode, which records what enforce
        /// would refuse) whose record then could not be made durable was answered 503 after its decision
        /// record: its close record tells the 503 (one decision record per request).
        /// </summary>
        public void AssertEverySeqKept(List<AuditEntry> chain, List<(long First, long Last)> lost)
        {
            var bySeq = chain.ToDictionary(e => e.Seq);
            foreach (var (seq, status) in Seqs)
            {
                if (bySeq.TryGetValue(seq, out var record))
                {
                    Assert.True(record.Kind == AuditKind.Decision, $"seq {seq} was answered {status} but its record is {record.Kind} {record.Decision} {record.Status} {record.Reason}");
                    // (Or its close record came after the decision and is itself in a named lost range:
                    // a stop that could not commit it.)
                    var told = record.Status == status
                        || (status == 503 && (record.Decision == "ALLOW" || !record.Enforced)
                            && (chain.Exists(c => c.Kind == AuditKind.Close && c.ConnectionId == record.ConnectionId && c.Seq > seq && c.Status == 503 && c.Reason == "audit_unavailable")
                                || lost.Exists(r => r.Last > seq)));
                    Assert.True(told, $"seq {seq} was answered {status} but its record is {record.Kind} {record.Decision} {record.Status} {record.Reason}, and no close record tells the {status}");
                }
                else
                {
                    Assert.True(lost.Exists(r => seq >= r.First && seq <= r.Last), $"seq {seq} (answered {status}) is neither in the chain nor named lost");
                }
            }
        }
    }
}
