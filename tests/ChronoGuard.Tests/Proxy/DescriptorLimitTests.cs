using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using ChronoGuard.Tests.Audit;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Proxy;

/// <summary>
/// File descriptors through the real binary under a small RLIMIT_NOFILE (prlimit): the limit sets the
/// admission limit, said once at start; keep-alive clients past it are answered 503 with a record,
/// never closed unanswered. (Running out anyway, below the admission limit, is answered 503 too; that
/// is not driven here: the JIT build under test dies "Out of memory" when it cannot open a file,
/// which the published NativeAOT binary does not.)
/// </summary>
public sealed partial class DescriptorLimitTests
{
    private const int Limit = 320;

    [Fact]
    public async Task The_descriptor_limit_is_raised_sets_the_admission_limit_said_once_and_every_keep_alive_client_gets_an_answer_and_a_record()
    {
        using var dir = new TempDir();
        await using var origin = TcpOrigin.Echo();
        // A soft limit below the hard one, as a soft 1024 beside a hard 20,000 often is: raised at start.
        await using var sidecar = await SidecarProcess.StartAsync(dir.Path, launcher: ["prlimit", $"--nofile={Limit - 100}:{Limit}", "--"]);

        var said = LimitLine().Match(sidecar.Output);
        Assert.True(said.Success, sidecar.Output);
        Assert.Equal(Limit.ToString(CultureInfo.InvariantCulture), said.Groups[1].Value);
        var allowed = int.Parse(said.Groups[2].Value, CultureInfo.InvariantCulture);
        Assert.InRange(allowed, 10, Limit / 2);

        // Past the admission limit the derived figure holds: 503 max_connections, with a record.
        var statuses = new List<int>();
        var clients = new List<RawClient>();
        for (var i = 0; i < allowed + 10; i++)
        {
            var (client, status) = await ConnectAsync(sidecar, origin.Port);
            statuses.Add(status);
            clients.Add(client);
        }

        Assert.Equal(allowed, statuses.Count(s => s == 200));
        Assert.Equal(10, statuses.Count(s => s == 503));
        await CloseAllAsync(clients, statuses.Count(s => s == 200), sidecar);

        sidecar.Signal("TERM");
        Assert.Equal(0, await sidecar.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        var output = sidecar.Output;
        Assert.Single(LimitLine().Matches(output));
        Assert.DoesNotContain("out of file descriptors", output, StringComparison.Ordinal);
        Assert.DoesNotContain("accept failed", output, StringComparison.Ordinal);

        // One decision record per client, with the status the client saw; none closed unanswered.
        var decisions = AuditTestData.Export(dir.File("audit"))
            .Select(l => JsonDocument.Parse(l).RootElement)
            .Where(r => r.GetProperty("kind").GetString() == "decision")
            .Select(r => (Status: r.GetProperty("status").GetInt32(), Reason: r.GetProperty("reason").GetString()))
            .ToList();
        var seen = statuses;
        Assert.True(seen.Count == decisions.Count, $"{seen.Count} answers: {string.Join(' ', seen)}\n{decisions.Count} records: {string.Join(' ', decisions)}");
        Assert.Equal(seen.Count(s => s == 200), decisions.Count(d => d.Status == 200));
        Assert.Equal(10, decisions.Count(d => d is (503, "max_connections")));
        Assert.DoesNotContain(decisions, d => d.Status == 499);
    }

    /// <summary>A tunnel through the sidecar: its status line, the client kept open (2 descriptors in the sidecar when 200).</summary>
    private static async Task<(RawClient Client, int Status)> ConnectAsync(SidecarProcess sidecar, int port)
    {
        var client = await RawClient.ConnectAsync(sidecar.ProxyEndPoint).WaitAsync(TimeSpan.FromSeconds(30)).ContinueWith(t => t.IsCompletedSuccessfully ? t.Result : null, TaskScheduler.Default);
        if (client is null)
        {
            Assert.Fail("connect failed; sidecar output:\n" + sidecar.Output);
        }

        try
        {
            await client.SendAsync($"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n");
            var head = await client.ReadHeadAsync(30_000);
            return (client, head.Status);
        }
        catch (Exception ex) when (ex is IOException or System.Net.Sockets.SocketException)
        {
            // Closed or reset with no answer: the failure this test exists to find.
            return (client, -1);
        }
    }

    /// <summary>Closes the clients and waits until the sidecar has closed the two descriptors of each open tunnel too.</summary>
    private static async Task CloseAllAsync(List<RawClient> clients, int tunnels, SidecarProcess sidecar)
    {
        var before = OpenDescriptors(sidecar.Process.Id);
        foreach (var c in clients)
        {
            c.Dispose();
        }

        clients.Clear();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (OpenDescriptors(sidecar.Process.Id) > before - (2 * tunnels) && !timeout.IsCancellationRequested)
        {
            // Polls a fact (the sidecar's descriptor table), never a fixed sleep.
            await Task.Yield();
            Thread.Sleep(10);
        }
    }

    private static int OpenDescriptors(int pid) => Directory.GetFileSystemEntries($"/proc/{pid}/fd").Length;

    [GeneratedRegex(@"RLIMIT_NOFILE (\d+) leaves room for (\d+) connections")]
    private static partial Regex LimitLine();
}
