using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Admin;

/// <summary>
/// SPEC §9's admin listener through the real executable and real clients: bearer tokens by SHA-256
/// with named actors, 401 for everything else (before any route is looked up), never on the stats
/// port, <c>/v1/reload</c> and <c>/v1/denials</c>.
/// </summary>
public sealed class AdminListenerTests
{
    [Fact]
    public async Task Only_a_configured_bearer_token_is_let_in_and_the_actor_is_its_name()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("policy.json"), AdminRig.Policy(8080));
        await using var rig = await AdminRig.StartAsync(dir);
        using var anonymous = new HttpClient { BaseAddress = rig.Http.BaseAddress };

        foreach (var header in new AuthenticationHeaderValue?[]
        {
            null,
            new("Bearer", "wrong"),
            new("Bearer", AdminRig.AliceToken.ToUpperInvariant()),
            new("Bearer", AdminRig.AliceToken + "x"),
            new("Bearer", AdminRig.AliceToken[..^1]),
            new("Basic", AdminRig.AliceToken),
            new("Bearer", AdminRig.Sha(AdminRig.AliceToken)),
        })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/grants") { Headers = { Authorization = header } };
            using var response = await anonymous.SendAsync(request);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.Equal("Bearer", response.Headers.WwwAuthenticate.Single().Scheme);
            Assert.DoesNotContain("[", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        // Without a token an unknown path is 401 too: the API's shape is not probeable.
        using (var unknown = await anonymous.GetAsync(new Uri("/v1/nothing", UriKind.Relative)))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, unknown.StatusCode);
        }

        using (var unknown = await rig.Http.GetAsync(new Uri("/v1/nothing", UriKind.Relative)))
        {
            Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        }

        using (var wrongMethod = await rig.Http.PutAsync(new Uri("/v1/grants", UriKind.Relative), new StringContent("{}")))
        {
            Assert.Equal(HttpStatusCode.MethodNotAllowed, wrongMethod.StatusCode);
        }

        Assert.Equal("[]", (await rig.Http.GetStringAsync(new Uri("/v1/grants", UriKind.Relative))).Trim());
        await rig.Sidecar.WaitForOutputAsync(l => l.Contains("admin: ops-alice GET /v1/grants -> 200", StringComparison.Ordinal), TimeSpan.FromSeconds(30));

        // The second token (its hash configured in upper case) is its own actor.
        using var bob = new HttpClient { BaseAddress = rig.Http.BaseAddress };
        bob.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", AdminRig.BobToken);
        Assert.Equal("[]", (await bob.GetStringAsync(new Uri("/v1/grants", UriKind.Relative))).Trim());
        await rig.Sidecar.WaitForOutputAsync(l => l.Contains("admin: ops-bob GET /v1/grants -> 200", StringComparison.Ordinal), TimeSpan.FromSeconds(30));

        // Two Authorization headers, even both valid, are refused: which one counts would be a guess.
        using (var raw = await RawClient.ConnectAsync(rig.Admin))
        {
            await raw.SendAsync($"GET /v1/grants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {AdminRig.AliceToken}\r\nAuthorization: Bearer {AdminRig.AliceToken}\r\n\r\n");
            Assert.Equal(401, (await raw.ReadHeadAsync()).Status);
        }

        // The stats port serves none of it.
        using var stats = new HttpClient();
        stats.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", AdminRig.AliceToken);
        using (var onStats = await stats.GetAsync(new Uri($"http://{rig.Sidecar.StatsEndPoint}/v1/grants")))
        {
            Assert.Equal(HttpStatusCode.NotFound, onStats.StatusCode);
        }

        // The token never reaches the log.
        Assert.DoesNotContain(AdminRig.AliceToken, rig.Sidecar.Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new[] { "CHRONOGUARD__Admin__Listen=127.0.0.1:0" }, "Admin:Listen is set but Admin:TokenSha256 lists no token")]
    [InlineData(new[] { "CHRONOGUARD__Admin__Listen=127.0.0.1:19477", "CHRONOGUARD__Stats__Listen=127.0.0.1:19477", "CHRONOGUARD__Admin__TokenSha256__0__Name=a", "CHRONOGUARD__Admin__TokenSha256__0__Sha256=" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" }, "is the stats port")]
    [InlineData(new[] { "CHRONOGUARD__Admin__Listen=127.0.0.1:0", "CHRONOGUARD__Admin__TokenSha256__0__Name=a", "CHRONOGUARD__Admin__TokenSha256__0__Sha256=my-plain-token" }, "Admin:TokenSha256:0:Sha256: is not 64 hex digits")]
    [InlineData(new[] { "CHRONOGUARD__Admin__Listen=127.0.0.1:0", "CHRONOGUARD__Admin__TokenSha256__0__Sha256=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" }, "Admin:TokenSha256:0: needs both Name and Sha256")]
    [InlineData(new[] { "CHRONOGUARD__Admin__Listen=127.0.0.1:0", "CHRONOGUARD__Admin__TokenSha256__0__Name=a", "CHRONOGUARD__Admin__TokenSha256__0__Sha256=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "CHRONOGUARD__Admin__TokenSha256__1__Name=a", "CHRONOGUARD__Admin__TokenSha256__1__Sha256=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdee" }, "'a' is named twice")]
    [InlineData(new[] { "CHRONOGUARD__Admin__Listen=127.0.0.1:0", "CHRONOGUARD__Admin__TokenSha256__0__Name=a", "CHRONOGUARD__Admin__TokenSha256__0__Sha256=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "CHRONOGUARD__Admin__TokenSha256__0__Token=x" }, "Admin:TokenSha256:0:Token is not a setting")]
    [InlineData(new[] { "CHRONOGUARD__Admin__Listen=nowhere" }, "Admin:Listen")]
    public async Task A_bad_admin_setting_is_one_line_and_exit_2(string[] environment, string expected)
    {
        using var dir = new TempDir();
        var env = environment.Select(e => e.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);
        var result = await SidecarRun.RunAsync(dir.Path, ["run", "--listen", "127.0.0.1:0", "--audit-dir", dir.File("audit")], env);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains(expected, result.Stderr, StringComparison.Ordinal);
        Assert.Single(result.Stderr.Trim().Split('\n'));
        Assert.DoesNotContain("my-plain-token", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Reload_answers_with_the_outcome_and_the_hash_and_a_bad_file_keeps_the_old_policy()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("policy.json"), AdminRig.Policy(8080));
        await using var rig = await AdminRig.StartAsync(dir);
        Assert.Equal(403, (await rig.ConnectAsync("new.test", 443)).Status);

        var changed = AdminRig.Policy(8080).Replace("\"allowed.test\"", "\"allowed.test\", \"new.test\"", StringComparison.Ordinal);
        File.WriteAllText(dir.File("policy.json"), changed);
        using (var response = await rig.Http.PostAsync(new Uri("/v1/reload", UriKind.Relative), null))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
            Assert.Equal("loaded", body.GetProperty("outcome").GetString());
            Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(dir.File("policy.json")))), body.GetProperty("sha256").GetString());
        }

        // In force at once: the policy now allows new.test (it is dialed and fails, 502, not refused 403).
        Assert.NotEqual(403, (await rig.ConnectAsync("new.test", 443)).Status);

        File.WriteAllText(dir.File("policy.json"), "{ \"version\": 1, \"defaultAction\": \"sometimes\" }");
        using (var response = await rig.Http.PostAsync(new Uri("/v1/reload", UriKind.Relative), null))
        {
            Assert.Equal((HttpStatusCode)422, response.StatusCode);
            var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
            Assert.Equal("rejected", body.GetProperty("outcome").GetString());
            Assert.Contains("defaultAction", body.GetProperty("error").GetString(), StringComparison.Ordinal);
            Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(dir.File("policy.json")))), body.GetProperty("sha256").GetString());
        }

        Assert.NotEqual(403, (await rig.ConnectAsync("new.test", 443)).Status);
        await rig.Sidecar.WaitForOutputAsync(l => l.Contains("admin API (ops-alice)", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task Denials_are_aggregated_per_destination_and_outcome_and_filtered_by_agent_and_time()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("policy.json"), AdminRig.Policy(8080));
        await using var rig = await AdminRig.StartAsync(dir);

        var first = await rig.ConnectAsync("elsewhere.test", 443);
        await rig.ConnectAsync("elsewhere.test", 443);
        await rig.ConnectAsync("Elsewhere.test", 443, agent: "other");
        await rig.ConnectAsync("blocked.test", 443);
        await rig.ConnectAsync("10.255.255.1", 443);
        await rig.ConnectAsync("elsewhere.test", 8080);
        Assert.Equal(("DENY", 403), (first.Decision, first.Status));

        // The answer waits for what was refused before it: no polling.
        var all = await DenialsAsync(rig, "?since=1h");
        Assert.Equal(4096, all.GetProperty("bound").GetInt32());
        Assert.Equal(0, all.GetProperty("evicted").GetInt64());
        var rows = all.GetProperty("denials").EnumerateArray().Select(r => (
            r.GetProperty("agent").GetString()!, r.GetProperty("host").GetString()!, r.GetProperty("port").GetInt32(),
            r.GetProperty("decision").GetString()!, r.GetProperty("reason").GetString()!, r.GetProperty("dialedIp").GetString()!, r.GetProperty("count").GetInt64())).ToList();
        Assert.Equal(
            new[]
            {
                ("bot", "elsewhere.test", 443, "DENY", "default_deny", "", 2L),
                ("bot", "10.255.255.1", 443, "BLOCK", "private_destination", "10.255.255.1", 1L),
                ("bot", "blocked.test", 443, "BLOCK", "domain_blocked", "", 1L),
                ("bot", "elsewhere.test", 8080, "DENY", "default_deny", "", 1L),
                ("other", "Elsewhere.test", 443, "DENY", "default_deny", "", 1L),
            }.OrderBy(r => r.Item1, StringComparer.Ordinal).ThenBy(r => r.Item2, StringComparer.Ordinal).ThenBy(r => r.Item3).ToList(),
            rows.OrderBy(r => r.Item1, StringComparer.Ordinal).ThenBy(r => r.Item2, StringComparer.Ordinal).ThenBy(r => r.Item3).ToList());
        Assert.Equal(("elsewhere.test", 2L), (rows[0].Item2, rows[0].Item7));
        var top = all.GetProperty("denials")[0];
        Assert.True(DateTimeOffset.Parse(top.GetProperty("firstSeen").GetString()!, System.Globalization.CultureInfo.InvariantCulture)
            <= DateTimeOffset.Parse(top.GetProperty("lastSeen").GetString()!, System.Globalization.CultureInfo.InvariantCulture));

        Assert.Single((await DenialsAsync(rig, "?agent=other")).GetProperty("denials").EnumerateArray());
        Assert.Empty((await DenialsAsync(rig, "?agent=nobody")).GetProperty("denials").EnumerateArray());
        Assert.Empty((await DenialsAsync(rig, "?since=" + Uri.EscapeDataString(DateTimeOffset.UtcNow.AddHours(1).ToString("O", System.Globalization.CultureInfo.InvariantCulture)))).GetProperty("denials").EnumerateArray());
        using var bad = await rig.Http.GetAsync(new Uri("/v1/denials?since=yesterday", UriKind.Relative));
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("since: 'yesterday' is not a time", await bad.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Malformed_or_oversized_requests_get_one_status_and_the_listener_goes_on()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("policy.json"), AdminRig.Policy(8080));
        await using var rig = await AdminRig.StartAsync(dir);
        var auth = $"Authorization: Bearer {AdminRig.AliceToken}\r\n";
        var cases = new (string Request, int Status)[]
        {
            ("GARBAGE\r\n\r\n", 400),
            ($"GET /v1/grants HTTP/1.1\r\n{auth}X: {new string('a', 9000)}\r\n\r\n", 431),
            ($"POST /v1/grants HTTP/1.1\r\n{auth}Content-Length: 70000\r\n\r\n", 413),
            ($"POST /v1/grants HTTP/1.1\r\n{auth}Content-Length: -1\r\n\r\n", 400),
            ($"POST /v1/grants HTTP/1.1\r\n{auth}Content-Length: 2\r\nContent-Length: 2\r\n\r\n{{}}", 400),
            ($"POST /v1/grants HTTP/1.1\r\n{auth}Transfer-Encoding: gzip\r\n\r\n", 400),
            ($"POST /v1/grants HTTP/1.1\r\n{auth}Transfer-Encoding: chunked\r\n\r\nzz\r\n{{}}\r\n0\r\n\r\n", 400),
            ($"POST /v1/grants HTTP/1.1\r\n{auth}Transfer-Encoding: chunked\r\n\r\n2\r\n{{}}XX0\r\n\r\n", 400),
            ($"DELETE /v1/grants/ HTTP/1.1\r\n{auth}\r\n", 404),
            ($"DELETE /v1/grants/a/b HTTP/1.1\r\n{auth}\r\n", 404),
            ($"DELETE /v1/grants/nope HTTP/1.1\r\n{auth}\r\n", 404),
        };
        foreach (var (request, status) in cases)
        {
            using var raw = await RawClient.ConnectAsync(rig.Admin);
            await raw.SendAsync(request);
            Assert.True((await raw.ReadHeadAsync()).Status == status, request[..Math.Min(60, request.Length)]);
        }

        Assert.Equal("[]", (await rig.Http.GetStringAsync(new Uri("/v1/grants", UriKind.Relative))).Trim());
    }

    [Fact]
    public async Task Connections_past_the_limit_are_answered_503_and_served_again_once_others_close()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("policy.json"), AdminRig.Policy(8080));
        await using var rig = await AdminRig.StartAsync(dir);
        var idle = new List<RawClient>();
        try
        {
            for (var i = 0; i < 64; i++)
            {
                idle.Add(await RawClient.ConnectAsync(rig.Admin));
            }

            using (var extra = await RawClient.ConnectAsync(rig.Admin))
            {
                Assert.Equal(503, (await extra.ReadHeadAsync()).Status);
            }

            // One idle connection ends: the listener has a place again.
            await idle[0].SendAsync("GARBAGE\r\n\r\n");
            Assert.Equal(400, (await idle[0].ReadHeadAsync()).Status);
            Assert.Contains("not an HTTP/1.1 request line", System.Text.Encoding.UTF8.GetString(await idle[0].ReadToEndAsync()), StringComparison.Ordinal);
            Assert.Equal("[]", (await rig.Http.GetStringAsync(new Uri("/v1/grants", UriKind.Relative))).Trim());
        }
        finally
        {
            idle.ForEach(c => c.Dispose());
        }
    }

    private static async Task<JsonElement> DenialsAsync(AdminRig rig, string query) =>
        JsonDocument.Parse(await rig.Http.GetStringAsync(new Uri("/v1/denials" + query, UriKind.Relative))).RootElement;
}
