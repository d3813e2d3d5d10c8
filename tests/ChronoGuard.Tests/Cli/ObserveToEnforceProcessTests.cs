using ChronoGuard.Audit;
using ChronoGuard.Policy;
using ChronoGuard.Sidecar.Cli;
using ChronoGuard.Tests.Policy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Cli;

/// <summary>
/// The operator's path of issue 19 through the real executable: <c>run</c> without a policy file
/// (observe mode) records what the network guard of the first enforce policy would refuse (a name that
/// resolves to a private address, a port outside 80 and 443) with <c>enforced: false</c> while
/// forwarding it; <c>policy suggest</c> on that log drafts the patterns with their ports and the
/// allowedCidrs entry the guard needs; <c>policy check</c> accepts the draft; and <c>run</c> enforcing
/// it lets the same requests through and refuses one that was not observed. The name is
/// <c>localhost</c>, which the system resolver answers from /etc/hosts (loopback), so no DNS server is asked.
/// </summary>
public sealed class ObserveToEnforceProcessTests
{
    [Fact]
    public async Task A_policy_less_observe_run_records_the_guard_and_port_refusals_and_its_draft_enforces_the_same_requests()
    {
        await using var origin = await KestrelOrigin.StartAsync();
        using var dir = new TempDir();
        var auditDir = dir.File("audit");
        var port = origin.Port;

        await using (var sidecar = await SidecarProcess.StartAsync(dir.Path))
        {
            Assert.Equal(200, await GetAsync(sidecar, $"localhost:{port}", auth: null));
            Assert.Equal(200, await ConnectAsync(sidecar, $"localhost:{port}", auth: null));

            // Port 80 on loopback: refused by the guard as a private address; observe dials it all the
            // same (nothing listens there in a test host, so the client gets 502, which is not asserted).
            await GetAsync(sidecar, "localhost:80", auth: null);
            sidecar.Signal("TERM");
            Assert.Equal(0, await sidecar.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        }

        var records = AuditReader.ReadDirectory(auditDir).Select(i => i.Entry!).Where(e => e.Kind == AuditKind.Decision).ToList();
        Assert.Equal(
            [
                ("GET", port, "BLOCK", Reasons.PortNotAllowed, false, "127.0.0.1"),
                ("CONNECT", port, "BLOCK", Reasons.PortNotAllowed, false, "127.0.0.1"),
                ("GET", 80, "BLOCK", Reasons.PrivateDestination, false, "127.0.0.1"),
            ],
            records.Select(r => (r.Method, r.Port, r.Decision, r.Reason, r.Enforced, r.DialedIp)));
        Assert.All(records, r => Assert.Equal(("anonymous", "localhost"), (r.Agent, r.Host)));
        Assert.Equal([200, 200], records.Take(2).Select(r => r.Status));

        var suggest = await SidecarRun.RunAsync(dir.Path, ["policy", "suggest", "--audit-dir", auditDir]);
        Assert.True(suggest.ExitCode == 0, suggest.Stderr);
        var draft = suggest.Stdout;
        Assert.Contains($"\"localhost:{port}\"", draft, StringComparison.Ordinal);
        Assert.Contains("\"localhost\"", draft, StringComparison.Ordinal);
        Assert.Contains("\"127.0.0.1/32\" // private_destination: 3 records", draft, StringComparison.Ordinal);

        var draftFile = dir.File("draft.json");
        File.WriteAllText(draftFile, draft.Replace(PolicyDraft.TokenPlaceholder, PolicyFixture.TokenSha, StringComparison.Ordinal));
        var check = await SidecarRun.RunAsync(dir.Path, ["policy", "check", draftFile]);
        Assert.True(check.ExitCode == 0, check.Stderr);
        Assert.Contains("mode enforce", check.Stdout, StringComparison.Ordinal);

        // Enforce the draft: the observed requests pass (the address through allowedCidrs, the port
        // through its pattern); the same name on a port never observed is refused.
        using var enforceDir = new TempDir();
        await using (var sidecar = await SidecarProcess.StartAsync(enforceDir.Path, ["--policy", draftFile]))
        {
            var auth = "Proxy-Authorization: " + System.Text.Encoding.ASCII.GetString(PolicyFixture.Basic("anonymous")) + "\r\n";
            Assert.Equal(200, await GetAsync(sidecar, $"localhost:{port}", auth));
            Assert.Equal(200, await ConnectAsync(sidecar, $"localhost:{port}", auth));
            Assert.Equal(403, await GetAsync(sidecar, $"localhost:{port + 1}", auth));
            sidecar.Signal("TERM");
            Assert.Equal(0, await sidecar.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        }

        var enforced = AuditReader.ReadDirectory(enforceDir.File("audit")).Select(i => i.Entry!).Where(e => e.Kind == AuditKind.Decision).ToList();
        Assert.Equal(
            [("ALLOW", true), ("ALLOW", true), ("BLOCK", true)],
            enforced.Select(r => (r.Decision, r.Enforced)));
        Assert.Equal(Reasons.PortNotAllowed, enforced[2].Reason);
    }

    private static async Task<int> GetAsync(SidecarProcess sidecar, string authority, string? auth)
    {
        using var client = await RawClient.ConnectAsync(sidecar.ProxyEndPoint);
        await client.SendAsync($"GET http://{authority}/hello HTTP/1.1\r\nHost: {authority}\r\n{auth}Connection: close\r\n\r\n");
        return (await client.ReadHeadAsync()).Status;
    }

    /// <summary>A tunnel carrying one plain-HTTP request: the status inside the tunnel, or the refusal's.</summary>
    private static async Task<int> ConnectAsync(SidecarProcess sidecar, string authority, string? auth)
    {
        using var client = await RawClient.ConnectAsync(sidecar.ProxyEndPoint);
        await client.SendAsync($"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n{auth}\r\n");
        var head = await client.ReadHeadAsync();
        if (head.Status != 200)
        {
            return head.Status;
        }

        await client.SendAsync($"GET /hello HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
        return (await client.ReadHeadAsync()).Status;
    }
}
