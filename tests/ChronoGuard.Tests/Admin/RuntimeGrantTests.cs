using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using ChronoGuard.Audit;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Admin;

/// <summary>
/// Runtime grants (SPEC §9) through the real executable: effective at once for that agent only, lifting
/// a defaultAction refusal and nothing else, each change a chained system record naming actor and
/// reason, kept across a restart, checked against the chain at start, ended by revocation and expiry.
/// </summary>
public sealed class RuntimeGrantTests
{
    private static Task<HttpResponseMessage> PostAsync(AdminRig rig, object body) =>
        rig.Http.PostAsync(new Uri("/v1/grants", UriKind.Relative), JsonContent.Create(body));

    private static async Task<JsonElement> GrantsAsync(AdminRig rig) =>
        JsonDocument.Parse(await rig.Http.GetStringAsync(new Uri("/v1/grants", UriKind.Relative))).RootElement;

    private static async Task<string> AddAsync(AdminRig rig, object body)
    {
        using var response = await PostAsync(rig, body);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Created, text);
        return JsonDocument.Parse(text).RootElement.GetProperty("id").GetString()!;
    }

    [Fact]
    public async Task A_grant_lifts_a_default_deny_at_once_for_its_agent_only_is_chained_and_survives_a_restart_until_revoked()
    {
        await using var origin = TcpOrigin.Echo();
        using var dir = new TempDir();
        File.WriteAllText(dir.File("policy.json"), AdminRig.Policy(origin.Port));
        await using var rig = await AdminRig.StartAsync(dir);

        Assert.Equal((403, "DENY"), Pick(await rig.ConnectAsync("localhost", origin.Port)));
        var id = await AddAsync(rig, new { agent = "bot", domains = new[] { "LocalHost." }, @for = "1h", reason = "INC-7 registry mirror" });
        var blockedId = await AddAsync(rig, new { agent = "bot", domains = new[] { "blocked.test" }, expires = DateTimeOffset.UtcNow.AddHours(2).ToString("O"), reason = "try to lift a block" });

        var allowed = await rig.ConnectAsync("localhost", origin.Port);
        Assert.Equal(200, allowed.Status);
        Assert.Equal((403, "DENY"), Pick(await rig.ConnectAsync("localhost", origin.Port, agent: "other")));
        // A runtime grant lifts only the default: the block stays.
        Assert.Equal((403, "BLOCK"), Pick(await rig.ConnectAsync("blocked.test", 443)));

        var listed = await GrantsAsync(rig);
        Assert.Equal(new[] { id, blockedId }.Order(), listed.EnumerateArray().Select(g => g.GetProperty("id").GetString()!).Order());
        var mine = listed.EnumerateArray().Single(g => g.GetProperty("id").GetString() == id);
        Assert.Equal(("bot", "localhost", "ops-alice", "INC-7 registry mirror"),
            (mine.GetProperty("agent").GetString(), mine.GetProperty("domains")[0].GetString(), mine.GetProperty("actor").GetString(), mine.GetProperty("reason").GetString()));

        await rig.RestartAsync(dir);
        Assert.Equal(new[] { id, blockedId }.Order(), (await GrantsAsync(rig)).EnumerateArray().Select(g => g.GetProperty("id").GetString()!).Order());
        Assert.Equal(200, (await rig.ConnectAsync("localhost", origin.Port)).Status);

        // A tunnel the grant let through is open (the echo origin answers through it) when the grant is revoked.
        using var tunnel = await RawClient.ConnectAsync(rig.Sidecar.ProxyEndPoint);
        await tunnel.SendAsync($"CONNECT localhost:{origin.Port} HTTP/1.1\r\nHost: localhost:{origin.Port}\r\nProxy-Authorization: {System.Text.Encoding.ASCII.GetString(ChronoGuard.Tests.Policy.PolicyFixture.Basic("bot"))}\r\n\r\n");
        Assert.Equal(200, (await tunnel.ReadHeadAsync()).Status);
        await tunnel.SendAsync("ping");
        Assert.Equal("ping"u8.ToArray(), await tunnel.ReadExactlyAsync(4));

        using var bob = new HttpClient { BaseAddress = rig.Http.BaseAddress };
        bob.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", AdminRig.BobToken);
        using (var revoked = await bob.DeleteAsync(new Uri($"/v1/grants/{id}?reason=done%20with%20it", UriKind.Relative)))
        {
            Assert.Equal(HttpStatusCode.OK, revoked.StatusCode);
        }

        Assert.Equal((403, "DENY"), Pick(await rig.ConnectAsync("localhost", origin.Port)));
        // The revocation ends the open tunnel too (the sidecar closes it; the origin never would).
        Assert.Empty(await tunnel.ReadToEndAsync(30_000));
        using (var again = await bob.DeleteAsync(new Uri($"/v1/grants/{id}", UriKind.Relative)))
        {
            Assert.Equal(HttpStatusCode.NotFound, again.StatusCode);
        }

        Assert.Equal([blockedId], (await GrantsAsync(rig)).EnumerateArray().Select(g => g.GetProperty("id").GetString()!));

        rig.Sidecar.Signal("TERM");
        Assert.Equal(0, await rig.Sidecar.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        var records = AuditReader.ReadDirectory(dir.File("audit")).Select(i => i.Entry!).ToList();
        var add = records.Single(r => r.Kind == AuditKind.System && r.Reason == "grant_add" && r.Rule == id);
        Assert.Equal(("bot", "localhost"), (add.Agent, add.Host));
        Assert.Contains("by ops-alice", add.Path, StringComparison.Ordinal);
        Assert.Contains("INC-7 registry mirror", add.Path, StringComparison.Ordinal);
        var revoke = records.Single(r => r.Kind == AuditKind.System && r.Reason == "grant_revoke" && r.Rule == id);
        Assert.Contains("by ops-bob", revoke.Path, StringComparison.Ordinal);
        Assert.Contains("done with it", revoke.Path, StringComparison.Ordinal);
        Assert.Equal(add.Policy, revoke.Policy);
        Assert.True(add.Seq < revoke.Seq);
        Assert.Contains(records, r => r.Kind == AuditKind.Close && r.Host == "localhost" && r.Reason == "policy_revoked");
        // The decisions the grant made name it, as a policy-file grant's do.
        Assert.Equal(3, records.Count(r => r.Kind == AuditKind.Decision && r.Reason == "grant:INC-7 registry mirror" && r.Decision == "ALLOW"));
        Assert.Equal(0, (await SidecarRun.RunAsync(dir.Path, ["verify", "--audit-dir", dir.File("audit")])).ExitCode);
    }

    [Fact]
    public async Task A_grant_edited_or_invented_in_grants_json_is_refused_at_start_and_logged()
    {
        await using var origin = TcpOrigin.Echo();
        using var dir = new TempDir();
        File.WriteAllText(dir.File("policy.json"), AdminRig.Policy(origin.Port));
        await using var rig = await AdminRig.StartAsync(dir);
        var kept = await AddAsync(rig, new { agent = "bot", domains = new[] { "kept.test" }, @for = "1h", reason = "kept" });
        var edited = await AddAsync(rig, new { agent = "bot", domains = new[] { "localhost" }, @for = "1h", reason = "short" });
        rig.Sidecar.Signal("TERM");
        Assert.Equal(0, await rig.Sidecar.WaitForExitAsync(TimeSpan.FromSeconds(60)));

        // Extend one grant by a year, and add one the chain never saw.
        var file = Path.Combine(dir.File("audit"), "grants.json");
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(file))!;
        var grants = json["grants"]!.AsArray();
        var victim = grants.Single(g => g!["id"]!.GetValue<string>() == edited)!;
        victim["expires"] = DateTimeOffset.UtcNow.AddYears(1).ToString("O");
        var invented = victim.DeepClone();
        invented["id"] = "g-000000000000";
        invented["domains"] = new System.Text.Json.Nodes.JsonArray("*.example.org");
        grants.Add(invented);
        File.WriteAllText(file, json.ToJsonString());

        await rig.RestartAsync(dir);
        Assert.Equal([kept], (await GrantsAsync(rig)).EnumerateArray().Select(g => g.GetProperty("id").GetString()!));
        Assert.Equal((403, "DENY"), Pick(await rig.ConnectAsync("localhost", origin.Port)));
        foreach (var refused in new[] { edited, "g-000000000000" })
        {
            await rig.Sidecar.WaitForOutputAsync(l => l.Contains($"grant {refused} is refused: the audit chain has no record of this grant", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
        }

        // The file now holds only what is in force.
        Assert.DoesNotContain(edited, File.ReadAllText(file), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Expiry_ends_a_grant_and_is_chained()
    {
        await using var origin = TcpOrigin.Echo();
        using var dir = new TempDir();
        File.WriteAllText(dir.File("policy.json"), AdminRig.Policy(origin.Port));
        await using var rig = await AdminRig.StartAsync(dir);

        var id = await AddAsync(rig, new { agent = "bot", domains = new[] { "localhost" }, @for = "2s", reason = "brief" });
        Assert.Equal(200, (await rig.ConnectAsync("localhost", origin.Port)).Status);

        // The signal: the sidecar says it expired (after chaining it), no sleeping on a clock.
        await rig.Sidecar.WaitForOutputAsync(l => l.Contains($"runtime grant {id} expired", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
        Assert.Empty((await GrantsAsync(rig)).EnumerateArray());
        Assert.Equal((403, "DENY"), Pick(await rig.ConnectAsync("localhost", origin.Port)));

        rig.Sidecar.Signal("TERM");
        Assert.Equal(0, await rig.Sidecar.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        Assert.Single(AuditReader.ReadDirectory(dir.File("audit")).Select(i => i.Entry!), r => r.Reason == "grant_expire" && r.Rule == id);
        Assert.DoesNotContain(id, File.ReadAllText(Path.Combine(dir.File("audit"), "grants.json")), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_bad_grant_request_is_400_naming_the_field_and_changes_nothing()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("policy.json"), AdminRig.Policy(8080));
        await using var rig = await AdminRig.StartAsync(dir);
        var cases = new (string Body, string Expected)[]
        {
            ("not json", "the body is not JSON"),
            ("[]", "$: must be an object"),
            ("""{ "domains": ["a.test"], "for": "1h", "reason": "r" }""", "$.agent: is required"),
            ("""{ "agent": "ghost", "domains": ["a.test"], "for": "1h", "reason": "r" }""", "$.agent: unknown agent \"ghost\""),
            ("""{ "agent": "bot", "domains": [], "for": "1h", "reason": "r" }""", "$.domains: must list 1 to 100"),
            ("""{ "agent": "bot", "domains": "a.test", "for": "1h", "reason": "r" }""", "$.domains: must be a list"),
            ("""{ "agent": "bot", "domains": [7], "for": "1h", "reason": "r" }""", "$.domains[0]: must be a string"),
            ("""{ "agent": "bot", "domains": ["a.test", "*.com"], "for": "1h", "reason": "r" }""", "$.domains[1]: '*.com': a wildcard over a public suffix"),
            ("""{ "agent": "bot", "domains": ["*.github.io"], "for": "1h", "reason": "r" }""", "$.domains[0]: '*.github.io': a wildcard over a public suffix"),
            ("""{ "agent": "bot", "domains": ["a.test:443"], "for": "1h", "reason": "r" }""", "$.domains[0]: 'a.test:443': a runtime grant names hosts, not ports"),
            ("""{ "agent": "bot", "domains": ["a*.test"], "for": "1h", "reason": "r" }""", "$.domains[0]: 'a*.test': a wildcard is only allowed"),
            ("""{ "agent": "bot", "domains": ["a.test"], "reason": "r" }""", "give exactly one of $.for"),
            ("""{ "agent": "bot", "domains": ["a.test"], "for": "1h", "expires": "2999-01-01T00:00:00Z", "reason": "r" }""", "give exactly one of $.for"),
            ("""{ "agent": "bot", "domains": ["a.test"], "for": "1y", "reason": "r" }""", "$.for: '1y' is not a duration"),
            ("""{ "agent": "bot", "domains": ["a.test"], "for": "0s", "reason": "r" }""", "$.for: '0s' is not a duration"),
            ("""{ "agent": "bot", "domains": ["a.test"], "expires": "2001-01-01T00:00:00Z", "reason": "r" }""", "$.expires: 2001-01-01T00:00:00.0000000+00:00 is not in the future"),
            ("""{ "agent": "bot", "domains": ["a.test"], "expires": "soon", "reason": "r" }""", "$.expires: 'soon' is not an ISO-8601 time"),
            ("""{ "agent": "bot", "domains": ["a.test"], "for": "1h" }""", "$.reason: is required"),
            ("""{ "agent": "bot", "domains": ["a.test"], "for": "1h", "reason": "two\nlines" }""", "$.reason: is required: one line"),
            ("""{ "agent": "bot", "domains": ["a.test"], "for": "1h", "reason": "r", "scope": "suffix" }""", "$.scope: unknown field"),
            ("""{ "agent": 5, "domains": ["a.test"], "for": "1h", "reason": "r" }""", "$.agent: must be a string"),
        };
        foreach (var (body, expected) in cases)
        {
            using var response = await rig.Http.PostAsync(new Uri("/v1/grants", UriKind.Relative), new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, body + " -> " + text);
            Assert.Contains(expected, JsonDocument.Parse(text).RootElement.GetProperty("error").GetString(), StringComparison.Ordinal);
        }

        Assert.Empty((await GrantsAsync(rig)).EnumerateArray());
        Assert.False(File.Exists(Path.Combine(dir.File("audit"), "grants.json")));
    }

    private static (int, string?) Pick((int Status, long? Seq, string? Decision) r) => (r.Status, r.Decision);
}
