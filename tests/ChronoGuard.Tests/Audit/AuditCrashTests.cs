using System.Net;
using System.Net.Http.Json;
using ChronoGuard.Sidecar.Cli;
using ChronoGuard.Tests.Proxy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Audit;

/// <summary>The real executable killed with SIGKILL while it is busy: what it committed must survive.</summary>
[Collection(RunAlone.Name)]
public sealed class AuditCrashTests
{
    private sealed record Head(long Seq, string Hash);

    [Fact]
    public async Task Killed_with_sigkill_under_load_ten_times_each_restart_recovers_a_valid_chain_with_every_committed_record()
    {
        using var dir = new TempDir();
        await using var origin = TcpOrigin.Echo();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var auditDir = Path.Combine(dir.Path, "audit");
        var previous = -1L;
        for (var round = 0; round < 10; round++)
        {
            // Alternate the durability modes: both must recover to a chain that holds what they acknowledged.
            var durability = round % 2 == 0 ? "batched" : "commit-before-forward";
            await using var sidecar = await SidecarProcess.StartAsync(dir.Path, environment: new Dictionary<string, string>
            {
                ["CHRONOGUARD__Audit__Durability"] = durability,
            });
            using var stop = new CancellationTokenSource();
            var tunnels = 0;
            var killed = 0;
            var load = Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    try
                    {
                        using var tunnel = await TunnelTests.OpenTunnelAsync(sidecar.ProxyEndPoint, origin.Port);
                        await tunnel.SendAsync("x");
                        await tunnel.ReadExactlyAsync(1);
                        Interlocked.Increment(ref tunnels);
                    }
                    catch (Exception) when (Volatile.Read(ref killed) == 1)
                    {
                        return;
                    }
                }
            })).ToArray();

            // The committed head the sidecar published while busy: everything up to it must survive.
            var stats = $"http://{sidecar.StatsEndPoint}/audit/head";
            Head acknowledged;
            using (var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60)))
            {
                while (true)
                {
                    acknowledged = (await http.GetFromJsonAsync<Head>(stats, deadline.Token))!;
                    if (acknowledged.Seq >= previous + 200 && Volatile.Read(ref tunnels) > 20)
                    {
                        break;
                    }

                    await Task.Delay(10, deadline.Token);
                }
            }

            Volatile.Write(ref killed, 1);
            sidecar.Process.Kill();
            await sidecar.WaitForExitAsync(TimeSpan.FromSeconds(30));
            stop.Cancel();
            await Task.WhenAll(load);

            var stdout = new StringWriter();
            var stderr = new StringWriter();
            var code = VerifyCommand.Run(["--audit-dir", auditDir, "--expect-head", $"{acknowledged.Seq}:{acknowledged.Hash}"], stdout, stderr);
            Assert.True(code == 0, $"round {round} ({durability}): {stdout}{stderr}");
            var head = long.Parse(stdout.ToString().Split(' ')[4].Split(':')[0], System.Globalization.CultureInfo.InvariantCulture);
            Assert.True(head >= acknowledged.Seq, $"round {round}: head {head} behind the acknowledged {acknowledged.Seq}");
            previous = head;
        }

        // The last restart recovers too, and says so in its start record.
        await using (var last = await SidecarProcess.StartAsync(dir.Path))
        {
            // /audit/head is the committed head: the start record shows there at its group commit, not at
            // once (batched commits every CommitIntervalMs), so poll for it to a deadline instead of
            // reading once right after start.
            var head = (await http.GetFromJsonAsync<Head>($"http://{last.StatsEndPoint}/audit/head"))!;
            using (var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
            {
                while (head.Seq <= previous && !deadline.IsCancellationRequested)
                {
                    await Task.Delay(10, CancellationToken.None);
                    head = (await http.GetFromJsonAsync<Head>($"http://{last.StatsEndPoint}/audit/head", CancellationToken.None))!;
                }
            }

            Assert.True(head.Seq > previous, $"the restarted sidecar's head {head.Seq} never passed the recovered {previous}");
            last.Signal("TERM");
            Assert.Equal(0, await last.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        }

        var final = new StringWriter();
        Assert.Equal(0, VerifyCommand.Run(["--audit-dir", auditDir], final, new StringWriter()));
        Assert.StartsWith("valid: ", final.ToString(), StringComparison.Ordinal);
    }
}
