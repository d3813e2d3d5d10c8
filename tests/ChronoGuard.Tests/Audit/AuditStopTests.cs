using System.Net;
using ChronoGuard.Audit;
using ChronoGuard.Sidecar.Cli;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Audit;

/// <summary>Stopping the writer: everything appended is committed; on a full disk SIGTERM still ends the real binary in time.</summary>
[Collection(RunAlone.Name)]
public sealed class AuditStopTests
{
    /// <summary>
    /// FASTER keeps 2 MiB of log pages in memory and refuses appends while they wait for their flush.
    /// A stop took that back-pressure for a fault: with more queued than the pages hold, it dropped the
    /// rest of the ring, never committed, and left a head file at seq -1 over a written log.
    /// </summary>
    [Fact]
    public void Stopping_with_more_queued_than_the_log_holds_in_memory_commits_every_record()
    {
        const int count = 8192;
        var path = "/" + new string('p', 1000);
        for (var round = 0; round < 3; round++)
        {
            using var dir = new TempDir();
            var auditDir = dir.File("audit");
            var writer = AuditWriter.Open(new AuditOptions { Directory = auditDir, QueueCapacity = count }, TimeProvider.System);
            for (var i = 0; i < count; i++)
            {
                var r = default(AuditRecord);
                r.Set(AuditText.Host, $"host-{i}.example.org");
                r.Set(AuditText.Path, path);
                Assert.Equal(i, writer.Append(ref r));
            }

            writer.Dispose();
            Assert.False(writer.Faulted, writer.FaultCause);
            Assert.Equal(count - 1, writer.Head.Seq);
            var stdout = new StringWriter();
            Assert.Equal(0, VerifyCommand.Run(["--audit-dir", auditDir], stdout, new StringWriter()));
            Assert.StartsWith($"valid: {count} records, head {count - 1}:", stdout.ToString(), StringComparison.Ordinal);
        }
    }

    [RootFact]
    public async Task Sigterm_ends_the_sidecar_within_the_drain_timeout_while_its_writer_is_faulted()
    {
        using var disk = new Tmpfs("4m");
        await using var sidecar = await SidecarProcess.StartAsync(disk.Path, environment: new Dictionary<string, string>
        {
            ["CHRONOGUARD__Audit__Durability"] = "commit-before-forward",
            ["CHRONOGUARD__Audit__SegmentSizeBits"] = "20",
            ["CHRONOGUARD__Audit__CommitTimeoutMs"] = "1000",
            ["CHRONOGUARD__Proxy__DrainTimeoutMs"] = "3000",
        });
        using var direct = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        using var proxied = new HttpClient(new SocketsHttpHandler { Proxy = new WebProxy($"http://{sidecar.ProxyEndPoint}"), UseProxy = true }) { Timeout = TimeSpan.FromSeconds(10) };
        var healthz = new Uri($"http://{sidecar.StatsEndPoint}/healthz");
        var readyz = new Uri($"http://{sidecar.StatsEndPoint}/readyz");
        Assert.Equal(HttpStatusCode.OK, (await proxied.GetAsync(healthz)).StatusCode);
        disk.Fill();

        // Traffic until the writer faults (readiness drops); every answer comes, none hangs.
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while ((await direct.GetAsync(readyz)).StatusCode == HttpStatusCode.OK)
        {
            Assert.True(DateTime.UtcNow < deadline, "the writer never faulted on a full disk");
            var status = (await proxied.GetAsync(healthz)).StatusCode;
            Assert.True(status is HttpStatusCode.OK or HttpStatusCode.ServiceUnavailable, $"status {status}");
        }

        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await proxied.GetAsync(healthz)).StatusCode);
        sidecar.Signal("TERM");

        // Drain timeout 3 s, a faulted writer's stop 1 s: well inside this bound, never a hang.
        await sidecar.WaitForExitAsync(TimeSpan.FromSeconds(15));
        Assert.True(sidecar.Process.HasExited);
    }
}
