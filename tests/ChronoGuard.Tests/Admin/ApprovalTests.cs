using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using ChronoGuard.Audit;
using ChronoGuard.Tests.Policy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Admin;

/// <summary>
/// <c>ask</c> (SPEC §9) on the real sidecar: a request nothing allows or blocks is held until an
/// operator answers it from another process (<c>chronoguard approve</c> / <c>deny</c>), it times out,
/// or the sidecar drains; guard and block refusals are never held; one decision record per held
/// request, the hold and its answer chained as system records. Every wait is on a signal: the
/// sidecar's "approval … pending" line, the client's own response.
/// </summary>
public sealed partial class ApprovalTests
{
    private static string Policy(int port, string defaultAction = "ask", string mode = "enforce", string unlisted = "") => $$"""
        { "version": 1, "mode": "{{mode}}", "defaultAction": "{{defaultAction}}",
          "network": { "allowedCidrs": ["127.0.0.0/8"], "allowedPorts": [443, {{port}}] },
          "agents": [ { "id": "bot", "tokenSha256": "{{PolicyFixture.TokenSha}}", "policies": ["p"] },
                      { "id": "plain", "tokenSha256": "{{PolicyFixture.TokenSha}}", "policies": ["q"] } ],
          "policies": [ { "name": "p", "allowedDomains": ["allowed.test"], "blockedDomains": ["blocked.test"]{{unlisted}} },
                        { "name": "q", "allowedDomains": ["allowed.test"] } ] }
        """;

    private static Dictionary<string, string> Cli(AdminRig rig, TempDir dir, string token = AdminRig.AliceToken)
    {
        var file = dir.File("admin-" + token.Length + ".token");
        File.WriteAllText(file, token + "\n");
        return new() { ["CHRONOGUARD_ADMIN"] = $"http://{rig.Admin}", ["CHRONOGUARD_ADMIN_TOKEN_FILE"] = file };
    }

    /// <summary>Sends a CONNECT and returns the client (its answer not read yet: it may be held).</summary>
    private static async Task<RawClient> SendConnectAsync(AdminRig rig, string host, int port, string agent = "bot")
    {
        var client = await RawClient.ConnectAsync(rig.Sidecar.ProxyEndPoint);
        var auth = Encoding.ASCII.GetString(PolicyFixture.Basic(agent));
        await client.SendAsync($"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\nProxy-Authorization: {auth}\r\n\r\n");
        return client;
    }

    /// <summary>Waits for the sidecar's line saying approval ID opened for <paramref name="host"/>:<paramref name="port"/>; returns ID.</summary>
    private static async Task<string> PendingIdAsync(AdminRig rig, string host, int port)
    {
        var line = await rig.Sidecar.WaitForOutputAsync(l => l.Contains(" pending: agent ", StringComparison.Ordinal) && l.Contains($" {host}:{port},", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
        return PendingPattern().Match(line).Groups[1].Value;
    }

    private static async Task<List<AuditEntry>> StopAndReadAsync(AdminRig rig, TempDir dir)
    {
        rig.Sidecar.Signal("TERM");
        Assert.Equal(0, await rig.Sidecar.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        return AuditReader.ReadDirectory(dir.File("audit")).Select(i => i.Entry!).ToList();
    }

    [Fact]
    public async Task A_held_curl_connect_is_approved_from_another_process_goes_on_and_the_grant_is_chained_and_survives_a_restart()
    {
        await using var origin = await KestrelOrigin.StartAsync();
        using var dir = new TempDir();
        File.WriteAllText(dir.File("policy.json"), Policy(origin.Port));
        await using var rig = await AdminRig.StartAsync(dir);
        var cli = Cli(rig, dir);
        var proxy = $"http://bot:{PolicyFixture.Token}@{rig.Sidecar.ProxyEndPoint}";

        // curl -p: a CONNECT tunnel, then plain HTTP inside it.
        var curl = ExternalTools.RunAsync("curl", ["-sS", "--max-time", "60", "-p", "-x", proxy, $"http://localhost:{origin.Port}/hello"], TimeSpan.FromSeconds(90));
        var id = await PendingIdAsync(rig, "localhost", origin.Port);
        Assert.False(curl.IsCompleted);

        var pending = await SidecarRun.RunAsync(dir.Path, ["pending"], cli);
        Assert.True(pending.ExitCode == 0, pending.Stderr);
        Assert.Matches($@"\n{id} +bot +localhost:{origin.Port} +CONNECT +1 ", pending.Stdout);
        using (var stats = new HttpClient())
        {
            var metrics = await stats.GetStringAsync($"http://{rig.Sidecar.StatsEndPoint}/metrics");
            Assert.Contains("\nchronoguard_pending_approvals 1\n", metrics, StringComparison.Ordinal);
        }

        var approved = await SidecarRun.RunAsync(dir.Path, ["approve", id, "--for", "2h", "--reason", "TICKET-7 needs the mirror"], cli);
        Assert.True(approved.ExitCode == 0, approved.Stderr);
        Assert.Matches($@"^{id}: approved: grant g-[0-9a-f]+: agent bot may reach localhost until ", approved.Stdout);
        var grantId = Regex.Match(approved.Stdout, "grant (g-[0-9a-f]+)").Groups[1].Value;

        var (code, output) = await curl;
        Assert.True(code == 0 && output == "hello from origin", $"curl: {code} {output}");
        Assert.Equal("no pending approvals\n", (await SidecarRun.RunAsync(dir.Path, ["pending"], cli)).Stdout);

        // The grant covers later requests without asking, and outlives a restart.
        Assert.Equal(200, (await rig.ConnectAsync("localhost", origin.Port)).Status);
        await rig.RestartAsync(dir);
        Assert.Equal(200, (await rig.ConnectAsync("localhost", origin.Port)).Status);

        var records = await StopAndReadAsync(rig, dir);
        var hold = Assert.Single(records, r => r.Reason == "approval_pending");
        Assert.Equal((id, "bot", $"localhost:{origin.Port}"), (hold.Rule, hold.Agent, hold.Host));
        Assert.Contains(records, r => r.Reason == "grant_add" && r.Rule == grantId && r.Path.Contains("by ops-alice", StringComparison.Ordinal) && r.Path.Contains("TICKET-7", StringComparison.Ordinal));
        var decisions = records.Where(r => r.Kind == AuditKind.Decision && r.Host == "localhost").ToList();
        Assert.Equal(3, decisions.Count);
        Assert.All(decisions, d => Assert.Equal(("ALLOW", "grant:TICKET-7 needs the mirror", "CONNECT"), (d.Decision, d.Reason, d.Method)));
        Assert.True(records.IndexOf(hold) < records.IndexOf(decisions[0]), "the hold is chained before the held request's one decision record");
    }

    [Fact]
    public async Task When_the_approval_expires_the_next_request_is_asked_for_again()
    {
        await using var origin = TcpOrigin.Echo();
        using var dir = new TempDir();
        File.WriteAllText(dir.File("policy.json"), Policy(origin.Port));
        await using var rig = await AdminRig.StartAsync(dir, new() { ["CHRONOGUARD__Admin__AskTimeoutMs"] = "500" });
        var cli = Cli(rig, dir);

        using var held = await SendConnectAsync(rig, "localhost", origin.Port);
        var answer = held.ReadHeadAsync(60_000);
        var id = await PendingIdAsync(rig, "localhost", origin.Port);
        var approved = await SidecarRun.RunAsync(dir.Path, ["approve", id, "--for", "2s"], cli);
        Assert.True(approved.ExitCode == 0, approved.Stderr);
        Assert.Equal(200, (await answer).Status);

        var grantId = Regex.Match(approved.Stdout, "grant (g-[0-9a-f]+)").Groups[1].Value;
        await rig.Sidecar.WaitForOutputAsync(l => l.Contains($"runtime grant {grantId} expired", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
        var again = await rig.ConnectAsync("localhost", origin.Port);
        Assert.Equal(403, again.Status);
        var records = await StopAndReadAsync(rig, dir);
        Assert.Equal(2, records.Count(r => r.Reason == "approval_pending"));
        Assert.Single(records, r => r.Kind == AuditKind.Decision && r.Reason == "approval_timeout");
        Assert.Contains(records, r => r.Reason == "grant_expire" && r.Rule == grantId);
    }

    [Fact]
    public async Task A_reload_settles_only_the_approvals_the_new_policy_no_longer_asks_for()
    {
        await using var origin = TcpOrigin.Echo();
        using var dir = new TempDir();
        File.WriteAllText(dir.File("policy.json"), Policy(origin.Port));
        await using var rig = await AdminRig.StartAsync(dir);

        using var listed = await SendConnectAsync(rig, "localhost", origin.Port);
        var listedAnswer = listed.ReadHeadAsync(60_000);
        var listedId = await PendingIdAsync(rig, "localhost", origin.Port);
        using var other = await SendConnectAsync(rig, "still.test", origin.Port);
        var otherAnswer = other.ReadHeadAsync(60_000);
        var otherId = await PendingIdAsync(rig, "still.test", origin.Port);

        // The operator adds the host to the policy instead of approving it.
        File.WriteAllText(dir.File("policy.json"), Policy(origin.Port).Replace("\"allowed.test\"", "\"allowed.test\", \"localhost\"", StringComparison.Ordinal));
        Assert.Equal(HttpStatusCode.OK, (await rig.Http.PostAsync("/v1/reload", null)).StatusCode);
        var head = await listedAnswer;
        Assert.Equal((200, null), (head.Status, head["X-ChronoGuard-Reason"]));
        Assert.False(otherAnswer.IsCompleted);
        using (var open = JsonDocument.Parse(await rig.Http.GetStringAsync("/v1/pending")))
        {
            Assert.Equal(otherId, Assert.Single(open.RootElement.EnumerateArray()).GetProperty("id").GetString());
        }

        Assert.Equal(0, (await SidecarRun.RunAsync(dir.Path, ["deny", otherId], Cli(rig, dir))).ExitCode);
        Assert.Equal(403, (await otherAnswer).Status);
        var records = await StopAndReadAsync(rig, dir);
        var allowed = Assert.Single(records, r => r.Kind == AuditKind.Decision && r.Host == "localhost");
        Assert.Equal(("ALLOW", "allowed"), (allowed.Decision, allowed.Reason));
        Assert.DoesNotContain(records, r => r.Reason == "approval_pending" && r.Rule != listedId && r.Rule != otherId);
    }

    [Fact]
    public async Task Deny_refuses_every_request_held_for_the_destination_and_names_the_actor()
    {
        await using var origin = TcpOrigin.Echo();
        using var dir = new TempDir();
        File.WriteAllText(dir.File("policy.json"), Policy(origin.Port));
        await using var rig = await AdminRig.StartAsync(dir, new() { ["CHRONOGUARD__Admin__MaxPending"] = "1" });
        var cli = Cli(rig, dir, AdminRig.BobToken);

        using var first = await SendConnectAsync(rig, "localhost", origin.Port);
        var firstAnswer = first.ReadHeadAsync(60_000);
        var id = await PendingIdAsync(rig, "localhost", origin.Port);

        // The same destination joins the open approval; another one finds the queue full and is refused at once.
        using var second = await SendConnectAsync(rig, "localhost", origin.Port);
        var secondAnswer = second.ReadHeadAsync(60_000);
        var full = await rig.ConnectAsync("other.test", origin.Port);
        Assert.Equal((429, "RATE_LIMITED"), (full.Status, full.Decision));
        using (var http = new HttpClient { BaseAddress = new Uri($"http://{rig.Admin}") })
        {
            http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", AdminRig.AliceToken);
            // The second request joins the open approval on its own connection: wait until the API counts it.
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (true)
            {
                Assert.True(DateTime.UtcNow < deadline, "the second CONNECT never joined the open approval");
                using var list = JsonDocument.Parse(await http.GetStringAsync("/v1/pending"));
                var open = Assert.Single(list.RootElement.EnumerateArray());
                if (open.GetProperty("held").GetInt32() == 2)
                {
                    Assert.Equal(id, open.GetProperty("id").GetString());
                    break;
                }

                await Task.Delay(20);
            }
        }

        var denied = await SidecarRun.RunAsync(dir.Path, ["deny", id, "--reason", "not on the list"], cli);
        Assert.Equal((0, $"{id}: denied (2 held request(s) refused)\n"), (denied.ExitCode, denied.Stdout));
        foreach (var answer in new[] { firstAnswer, secondAnswer })
        {
            var head = await answer;
            Assert.Equal((403, "DENY", "approval_denied"), (head.Status, head["X-ChronoGuard-Decision"], head["X-ChronoGuard-Reason"]));
        }

        var again = await SidecarRun.RunAsync(dir.Path, ["approve", id], cli);
        Assert.Equal(1, again.ExitCode);
        Assert.Contains($"no open approval {id}", again.Stderr, StringComparison.Ordinal);
        Assert.Equal(1, again.Stderr.Count(c => c == '\n'));

        var records = await StopAndReadAsync(rig, dir);
        Assert.Contains(records, r => r.Reason == "approval_deny" && r.Rule == id && r.Path!.Contains("by ops-bob: not on the list", StringComparison.Ordinal));
        Assert.Equal(2, records.Count(r => r.Kind == AuditKind.Decision && r.Reason == "approval_denied" && r.Status == 403));
        Assert.Single(records, r => r.Kind == AuditKind.Decision && r.Reason == "approval_queue_full" && r.Host == "other.test");

        // A draft lifts what nobody decided (the full queue), never what a person denied.
        var draft = await SidecarRun.RunAsync(dir.Path, ["policy", "suggest", "--audit-dir", dir.File("audit")]);
        Assert.True(draft.ExitCode == 0, draft.Stderr);
        Assert.Contains("\"other.test:" + origin.Port + "\"", draft.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("\"localhost", draft.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_held_plain_http_request_times_out_with_approval_timeout_and_leaves_nothing_pending()
    {
        await using var origin = TcpOrigin.Echo();
        using var dir = new TempDir();
        File.WriteAllText(dir.File("policy.json"), Policy(origin.Port));
        await using var rig = await AdminRig.StartAsync(dir, new() { ["CHRONOGUARD__Admin__AskTimeoutMs"] = "300" });

        using var client = await RawClient.ConnectAsync(rig.Sidecar.ProxyEndPoint);
        var auth = Encoding.ASCII.GetString(PolicyFixture.Basic("bot"));
        await client.SendAsync($"GET http://localhost:{origin.Port}/x HTTP/1.1\r\nHost: localhost:{origin.Port}\r\nProxy-Authorization: {auth}\r\n\r\n");
        var head = await client.ReadHeadAsync(30_000);
        Assert.Equal((403, "DENY", "approval_timeout"), (head.Status, head["X-ChronoGuard-Decision"], head["X-ChronoGuard-Reason"]));
        await rig.Sidecar.WaitForOutputAsync(l => l.Contains("closed unanswered", StringComparison.Ordinal) && l.Contains("nobody answered within Admin:AskTimeoutMs", StringComparison.Ordinal), TimeSpan.FromSeconds(20));
        Assert.Equal("[]\n", await rig.Http.GetStringAsync("/v1/pending"));

        var records = await StopAndReadAsync(rig, dir);
        Assert.Single(records, r => r.Reason == "approval_pending" && r.Path!.StartsWith("GET localhost:", StringComparison.Ordinal));
        var decision = Assert.Single(records, r => r.Kind == AuditKind.Decision && r.Host == "localhost");
        Assert.Equal(("DENY", "approval_timeout", "GET", "/x"), (decision.Decision, decision.Reason, decision.Method, decision.Path));
        var draft = await SidecarRun.RunAsync(dir.Path, ["policy", "suggest", "--audit-dir", dir.File("audit")]);
        Assert.True(draft.ExitCode == 0, draft.Stderr);
        Assert.Contains("\"localhost:" + origin.Port + "\"", draft.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_suffix_approval_releases_every_held_request_it_covers_and_never_spans_a_public_suffix()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("policy.json"), Policy(443));
        await using var rig = await AdminRig.StartAsync(dir);
        var cli = Cli(rig, dir);

        // Names under .test resolve nowhere: once approved the requests are ALLOWed and then fail to
        // resolve, which is all this test needs (what the grant released, not a dial).
        using var a = await SendConnectAsync(rig, "a.approve.test", 443);
        var aAnswer = a.ReadHeadAsync(60_000);
        var aId = await PendingIdAsync(rig, "a.approve.test", 443);
        using var b = await SendConnectAsync(rig, "b.approve.test", 443);
        var bAnswer = b.ReadHeadAsync(60_000);
        await PendingIdAsync(rig, "b.approve.test", 443);
        using var other = await SendConnectAsync(rig, "localhost", 443, agent: "bot");
        var otherAnswer = other.ReadHeadAsync(60_000);
        var otherId = await PendingIdAsync(rig, "localhost", 443);

        var approved = await SidecarRun.RunAsync(dir.Path, ["approve", aId, "--suffix"], cli);
        Assert.True(approved.ExitCode == 0, approved.Stderr);
        Assert.Contains("may reach *.approve.test until", approved.Stdout, StringComparison.Ordinal);
        foreach (var answer in new[] { aAnswer, bAnswer })
        {
            var head = await answer;
            Assert.NotEqual(403, head.Status);
            Assert.Equal("ALLOW", head["X-ChronoGuard-Decision"]);
        }

        Assert.False(otherAnswer.IsCompleted);
        var single = await SidecarRun.RunAsync(dir.Path, ["approve", otherId, "--suffix"], cli);
        Assert.Equal(1, single.ExitCode);
        Assert.Contains("public suffix", single.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("\"localhost\"", await rig.Http.GetStringAsync("/v1/grants"), StringComparison.Ordinal);
        var bad = await rig.Http.PostAsync($"/v1/pending/{otherId}", new StringContent("""{"approve": true, "for": "soon"}"""));
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("$.for", await bad.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(0, (await SidecarRun.RunAsync(dir.Path, ["deny", otherId], cli)).ExitCode);
        Assert.Equal(403, (await otherAnswer).Status);

        var records = await StopAndReadAsync(rig, dir);
        Assert.Equal(2, records.Count(r => r.Kind == AuditKind.Decision && r.Decision == "ALLOW" && r.Host!.EndsWith(".approve.test", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Guard_block_and_port_refusals_are_never_held_and_drain_answers_a_held_request_503()
    {
        await using var origin = TcpOrigin.Echo();
        using var dir = new TempDir();
        File.WriteAllText(dir.File("policy.json"), Policy(origin.Port));
        await using var rig = await AdminRig.StartAsync(dir);

        var guarded = await rig.ConnectAsync("10.0.0.1", origin.Port);
        Assert.Equal((403, "BLOCK"), (guarded.Status, guarded.Decision));
        var blocked = await rig.ConnectAsync("blocked.test", origin.Port);
        Assert.Equal((403, "BLOCK"), (blocked.Status, blocked.Decision));
        var port = await rig.ConnectAsync("localhost", 9);
        Assert.Equal((403, "BLOCK"), (port.Status, port.Decision));
        Assert.Equal("[]\n", await rig.Http.GetStringAsync("/v1/pending"));

        using var held = await SendConnectAsync(rig, "localhost", origin.Port);
        var answer = held.ReadHeadAsync(60_000);
        await PendingIdAsync(rig, "localhost", origin.Port);
        rig.Sidecar.Signal("TERM");
        var head = await answer;
        Assert.Equal((503, "DENY", "drain"), (head.Status, head["X-ChronoGuard-Decision"], head["X-ChronoGuard-Reason"]));
        Assert.Equal(0, await rig.Sidecar.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        var records = AuditReader.ReadDirectory(dir.File("audit")).Select(i => i.Entry!).ToList();
        Assert.Single(records, r => r.Reason == "approval_pending");
        Assert.Single(records, r => r.Kind == AuditKind.Decision && r.Reason == "drain" && r.Status == 503);
    }

    [Fact]
    public async Task Unlisted_ask_holds_only_the_agents_under_that_policy_and_observe_mode_lets_ask_through()
    {
        await using var origin = TcpOrigin.Echo();
        using var dir = new TempDir();
        File.WriteAllText(dir.File("policy.json"), Policy(origin.Port, defaultAction: "deny", unlisted: ", \"unlisted\": \"ask\""));
        await using (var rig = await AdminRig.StartAsync(dir))
        {
            var plain = await rig.ConnectAsync("localhost", origin.Port, agent: "plain");
            Assert.Equal((403, "DENY"), (plain.Status, plain.Decision));
            using var held = await SendConnectAsync(rig, "localhost", origin.Port);
            var answer = held.ReadHeadAsync(60_000);
            var id = await PendingIdAsync(rig, "localhost", origin.Port);
            Assert.Equal(0, (await SidecarRun.RunAsync(dir.Path, ["deny", id], Cli(rig, dir))).ExitCode);
            Assert.Equal(403, (await answer).Status);
        }

        using var observed = new TempDir();
        File.WriteAllText(observed.File("policy.json"), Policy(origin.Port, mode: "observe"));
        await using var watching = await AdminRig.StartAsync(observed);
        Assert.Equal(200, (await watching.ConnectAsync("localhost", origin.Port)).Status);
        var records = await StopAndReadAsync(watching, observed);
        var d = Assert.Single(records, r => r.Kind == AuditKind.Decision && r.Host == "localhost");
        Assert.Equal(("DENY", "approval_required", false), (d.Decision, d.Reason, d.Enforced));
        Assert.DoesNotContain(records, r => r.Reason == "approval_pending");
    }

    [Fact]
    public async Task Ask_without_the_admin_api_is_a_one_line_load_error_and_explain_exits_1_with_ASK()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("policy.json"), Policy(443));
        var run = await SidecarRun.RunAsync(dir.Path, ["run", "--policy", dir.File("policy.json"), "--listen", "127.0.0.1:0", "--stats", "127.0.0.1:0", "--audit-dir", dir.File("audit")]);
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("policy.json: line ", run.Stderr, StringComparison.Ordinal);
        Assert.Contains("$.defaultAction: \"ask\" holds requests until an operator approves them, which needs the admin API (set Admin:Listen", run.Stderr, StringComparison.Ordinal);

        File.WriteAllText(dir.File("unlisted.json"), Policy(443, defaultAction: "deny", unlisted: ", \"unlisted\": \"ask\""));
        var unlisted = await SidecarRun.RunAsync(dir.Path, ["run", "--policy", dir.File("unlisted.json"), "--listen", "127.0.0.1:0", "--stats", "127.0.0.1:0", "--audit-dir", dir.File("audit2")]);
        Assert.Equal(2, unlisted.ExitCode);
        Assert.Contains("$.policies[0].unlisted: \"ask\" holds requests", unlisted.Stderr, StringComparison.Ordinal);

        var explain = await SidecarRun.RunAsync(dir.Path, ["policy", "explain", dir.File("policy.json"), "--agent", "bot", "--target", "example.com:443"]);
        Assert.Equal(1, explain.ExitCode);
        Assert.Contains("decision: ASK (held for an operator's approval", explain.Stdout, StringComparison.Ordinal);
        var allowed = await SidecarRun.RunAsync(dir.Path, ["policy", "explain", dir.File("policy.json"), "--agent", "bot", "--target", "allowed.test:443"]);
        Assert.Equal(0, allowed.ExitCode);
        Assert.Equal(0, (await SidecarRun.RunAsync(dir.Path, ["policy", "check", dir.File("policy.json")])).ExitCode);

        File.WriteAllText(dir.File("typo.json"), Policy(443, defaultAction: "deny", unlisted: ", \"unlisted\": \"prompt\""));
        var typo = await SidecarRun.RunAsync(dir.Path, ["policy", "check", dir.File("typo.json")]);
        Assert.Equal(1, typo.ExitCode);
        Assert.Contains("$.policies[0].unlisted: must be \"ask\" (got \"prompt\")", typo.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Curl_over_socks5_is_held_until_approved_and_then_gets_its_answer()
    {
        await using var origin = await KestrelOrigin.StartAsync();
        using var dir = new TempDir();
        File.WriteAllText(dir.File("policy.json"), Policy(origin.Port));
        await using var rig = await AdminRig.StartAsync(dir, new()
        {
            ["CHRONOGUARD__Socks__Listeners__0__Listen"] = "127.0.0.1:0",
            ["CHRONOGUARD__Socks__Listeners__0__Agent"] = "bot",
        });
        var line = await rig.Sidecar.WaitForOutputAsync(l => l.Contains("Socks:Listeners:0:Listen listening on ", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
        var socks = Regex.Match(line, @"Socks:Listeners:0:Listen listening on (\S+) \(").Groups[1].Value;

        var curl = ExternalTools.RunAsync("curl", ["-sS", "--max-time", "60", "--socks5-hostname", socks, $"http://localhost:{origin.Port}/hello"], TimeSpan.FromSeconds(90));
        var id = await PendingIdAsync(rig, "localhost", origin.Port);
        Assert.False(curl.IsCompleted);
        Assert.Equal(0, (await SidecarRun.RunAsync(dir.Path, ["approve", id], Cli(rig, dir))).ExitCode);
        var (code, output) = await curl;
        Assert.True(code == 0 && output == "hello from origin", $"curl: {code} {output}");

        var records = await StopAndReadAsync(rig, dir);
        Assert.Single(records, r => r.Reason == "approval_pending" && r.Path.StartsWith("SOCKS localhost:", StringComparison.Ordinal));
        var d = Assert.Single(records, r => r.Kind == AuditKind.Decision && r.Method == "SOCKS");
        Assert.Equal(("ALLOW", "listener"), (d.Decision, AuditEntry.IdentityName(d.Identity)));
        Assert.StartsWith("grant:approval " + id, d.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_client_that_leaves_while_held_is_dropped_and_never_sent_on()
    {
        var requests = 0;
        await using var origin = new TcpOrigin(async s =>
        {
            Interlocked.Increment(ref requests);
            await s.SendAsync("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"u8.ToArray());
        });
        using var dir = new TempDir();
        File.WriteAllText(dir.File("policy.json"), Policy(origin.Port));
        await using var rig = await AdminRig.StartAsync(dir);

        var client = await RawClient.ConnectAsync(rig.Sidecar.ProxyEndPoint);
        var auth = Encoding.ASCII.GetString(PolicyFixture.Basic("bot"));
        await client.SendAsync($"POST http://localhost:{origin.Port}/charge HTTP/1.1\r\nHost: localhost:{origin.Port}\r\nProxy-Authorization: {auth}\r\nContent-Length: 2\r\n\r\nhi");
        var id = await PendingIdAsync(rig, "localhost", origin.Port);
        client.Dispose();

        // The approval closes once its only request has left (the sidecar says so, well before the
        // 30 s timeout); then approving it finds nothing to release.
        await rig.Sidecar.WaitForOutputAsync(l => l.Contains($"approval {id} closed unanswered", StringComparison.Ordinal) && l.Contains("its client left", StringComparison.Ordinal), TimeSpan.FromSeconds(20));
        Assert.Equal("[]\n", await rig.Http.GetStringAsync("/v1/pending"));
        var late = await rig.Http.PostAsync($"/v1/pending/{id}", new StringContent("""{"approve": true}"""));
        Assert.Equal(HttpStatusCode.NotFound, late.StatusCode);
        var records = await StopAndReadAsync(rig, dir);
        var d = Assert.Single(records, r => r.Kind == AuditKind.Decision && r.Host == "localhost");
        Assert.Equal(("DENY", "client_closed", 499), (d.Decision, d.Reason, d.Status));
        Assert.Equal(0, Volatile.Read(ref requests));
    }

    [GeneratedRegex(@"approval (p-[0-9a-f]+) pending")]
    private static partial Regex PendingPattern();
}
