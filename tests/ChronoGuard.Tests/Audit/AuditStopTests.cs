using System.Net;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Audit;

/// <summary>The real binary on a full audit disk: SIGTERM still ends it within the drain timeout.</summary>
[Collection(RunAlone.Name)]
public sealed class AuditStopTests
{
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
