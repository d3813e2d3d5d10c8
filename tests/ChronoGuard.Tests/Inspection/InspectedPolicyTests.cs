using System.Net;
using System.Text;
using ChronoGuard.Audit;
using ChronoGuard.Policy;
using ChronoGuard.Proxy;
using ChronoGuard.Tests.Policy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Inspection;

/// <summary>
/// Inspection with the real policy, gate and audit log (SPEC §7): <c>inspect</c> turns a CONNECT into
/// inner requests that method and path rules judge one by one, and a credential's placeholder becomes
/// the secret on the way to the origin only when everything binds it.
/// </summary>
public sealed class InspectedPolicyTests : IDisposable
{
    private const string Secret = "ghp_Inspected-S3cret-0123456789";
    private const string Placeholder = "cg-placeholder-github";

    private readonly TempDir _dir = new();

    public InspectedPolicyTests() => File.WriteAllText(_dir.File("github.secret"), Secret + "\n");

    public void Dispose() => _dir.Dispose();

    /// <summary>bot holds the credential; reader uses the same policy but is not listed in it.</summary>
    private string Json(int port) => $$"""
        {
          "version": 1, "defaultAction": "deny",
          "network": { "allowedPorts": [{{port}}], "allowPrivateDestinations": true },
          "agents": [
            { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] },
            { "id": "reader", "tokenSha256": "$TOKEN", "policies": ["p"] }
          ],
          "policies": [ { "name": "p",
            "allowedDomains": ["{{InspectionRig.Host}}", "{{InspectionRig.Opaque}}"],
            "inspect": ["{{InspectionRig.Host}}"],
            "rules": [
              { "name": "read-only", "priority": 1, "action": "deny",
                "when": [ { "field": "domain", "op": "equals", "value": "{{InspectionRig.Host}}" }, { "field": "method", "op": "not_in", "value": ["GET", "HEAD"] } ] },
              { "name": "no-admin", "priority": 2, "action": "deny", "when": [ { "field": "path", "op": "regex", "value": "^/admin(/|$)" } ] }
            ] } ],
          "credentials": [
            { "name": "github-api", "agents": ["bot"], "domains": ["{{InspectionRig.Host}}"], "header": "Authorization",
              "value": "Bearer {secret}", "secretFile": "{{_dir.File("github.secret")}}", "placeholder": "{{Placeholder}}" }
          ]
        }
        """;

    private sealed record Run(TestProxy Proxy, RecordingGate Records, AuditWriter Audit, PolicyEngines Policy) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Proxy.DisposeAsync();
            Audit.Dispose();
            Policy.Dispose();
        }
    }

    private Run Start(InspectionRig rig)
    {
        var policy = new PolicyEngines(Json(rig.Port));
        var audit = AuditWriter.Open(new AuditOptions { Directory = _dir.File("audit") }, TimeProvider.System);
        var records = new RecordingGate(new PolicyGate(policy.Engine, TimeProvider.System, audit));
        var proxy = TestProxy.Start(gate: records, resolver: rig.Resolver, inspection: rig.Inspection);
        return new Run(proxy, records, audit, policy);
    }

    private static HttpClient Client(InspectionRig rig, TestProxy proxy, string agent) =>
        rig.Client(proxy, proxyCredentials: new NetworkCredential(agent, PolicyFixture.Token));

    private static HttpRequestMessage Get(InspectionRig rig, string path, string? authorization = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, rig.Url(path));
        if (authorization is not null)
        {
            request.Headers.TryAddWithoutValidation("Authorization", authorization);
        }

        return request;
    }

    [Fact]
    public async Task Method_and_path_rules_judge_each_request_inside_one_inspected_tunnel_and_each_is_audited_with_its_path()
    {
        await using var rig = await InspectionRig.StartAsync();
        await using var run = Start(rig);
        using var client = Client(rig, run.Proxy, "bot");

        using var read = await client.SendAsync(Get(rig, "/repos/a"));
        using var write = await client.PostAsync(rig.Url("/repos/a"), new StringContent("x"));
        using var admin = await client.SendAsync(Get(rig, "/admin/x"));
        using var again = await client.SendAsync(Get(rig, "/repos/b"));

        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.Forbidden, HttpStatusCode.Forbidden, HttpStatusCode.OK], new[] { read.StatusCode, write.StatusCode, admin.StatusCode, again.StatusCode });
        Assert.Equal("POLICY_VIOLATION", write.Headers.GetValues("X-ChronoGuard-Decision").Single());
        Assert.Equal(["GET /repos/a", "GET /repos/b"], rig.Origin.Seen);
        // One tunnel (after the client's 407 round trip): the POST's body was read away, not a reason to close.
        Assert.Equal(
            [("CONNECT", "", 407), ("CONNECT", "", 200), ("GET", "/repos/a", 200), ("POST", "/repos/a", 403), ("GET", "/admin/x", 403), ("GET", "/repos/b", 200)],
            run.Records.Requests.Zip(run.Records.Records, (r, d) => (r.Method, r.Path, d.Status)));
        // Each inner request is the tunnel's agent, identified the way the tunnel was.
        Assert.All(run.Records.Agents.Skip(1), a => Assert.Equal("bot", a.Agent));
        Assert.All(run.Records.Identities.Skip(1), i => Assert.Equal(AuditIdentity.Credential, i));

        await run.Proxy.DisposeAsync();
        run.Audit.Dispose();
        var decisions = AuditReader.ReadDirectory(_dir.File("audit")).Select(i => i.Entry!).Where(e => e.Kind == AuditKind.Decision).ToList();
        Assert.Equal(["CONNECT ", "CONNECT ", "GET /repos/a", "POST /repos/a", "GET /admin/x", "GET /repos/b"], decisions.Select(e => e.Method + " " + e.Path));
    }

    [Fact]
    public async Task The_origin_receives_the_secret_where_the_agent_sent_the_placeholder_and_only_there()
    {
        await using var rig = await InspectionRig.StartAsync();
        await using var run = Start(rig);
        using var client = Client(rig, run.Proxy, "bot");

        using var injected = await client.SendAsync(Get(rig, "/quiet/user", "Bearer " + Placeholder));
        var body = await injected.Content.ReadAsStringAsync();
        using var without = await client.SendAsync(Get(rig, "/quiet/plain", "Bearer mine"));

        Assert.Equal(HttpStatusCode.OK, injected.StatusCode);
        Assert.Equal("ok\n", body);
        var echoes = rig.Origin.Echoes.ToArray();
        Assert.Contains("Authorization: Bearer " + Secret + "\n", echoes[0], StringComparison.Ordinal);
        Assert.DoesNotContain(Placeholder, echoes[0], StringComparison.Ordinal);
        // Without the placeholder nothing is replaced: the agent's own header goes as it was.
        Assert.Contains("Authorization: Bearer mine\n", echoes[1], StringComparison.Ordinal);
        Assert.DoesNotContain(Secret, echoes[1], StringComparison.Ordinal);
        Assert.Equal([null, null, "github-api", null], run.Records.CredentialNames);

        await run.Proxy.DisposeAsync();
        run.Audit.Dispose();
        var decisions = AuditReader.ReadDirectory(_dir.File("audit")).Select(i => i.Entry!).Where(e => e.Kind == AuditKind.Decision).ToList();
        Assert.Equal(["", "", "github-api", ""], decisions.Select(e => e.Credential));
        foreach (var file in Directory.EnumerateFiles(_dir.File("audit"), "*", SearchOption.AllDirectories))
        {
            Assert.True((await File.ReadAllBytesAsync(file)).AsSpan().IndexOf(Encoding.ASCII.GetBytes(Secret)) < 0, $"the secret is in {file}");
        }
    }

    [Fact]
    public async Task An_agent_not_listed_in_the_credential_is_refused_credential_misdirected_and_the_origin_sees_nothing()
    {
        await using var rig = await InspectionRig.StartAsync();
        await using var run = Start(rig);
        using var client = Client(rig, run.Proxy, "reader");

        using var refused = await client.SendAsync(Get(rig, "/quiet/user", "Bearer " + Placeholder));
        using var fine = await client.SendAsync(Get(rig, "/quiet/other"));

        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Equal(Reasons.CredentialMisdirected, refused.Headers.GetValues("X-ChronoGuard-Reason").Single());
        Assert.Equal(HttpStatusCode.OK, fine.StatusCode);
        Assert.Equal(["GET /quiet/other"], rig.Origin.Seen);
        Assert.Contains((403, "POLICY_VIOLATION", Reasons.CredentialMisdirected), run.Records.Records.Select(r => (r.Status, r.Decision, r.Reason)));
    }

    [Fact]
    public async Task A_placeholder_in_the_head_of_a_CONNECT_to_an_opaque_host_is_refused_credential_misdirected()
    {
        await using var rig = await InspectionRig.StartAsync();
        await using var run = Start(rig);
        using var raw = await RawClient.ConnectAsync(run.Proxy.EndPoint);

        await raw.SendAsync($"CONNECT {InspectionRig.Opaque}:{rig.Port} HTTP/1.1\r\nHost: {InspectionRig.Opaque}:{rig.Port}\r\n{PolicyEngines.Credentials()}X-Token: {Placeholder}\r\n\r\n");
        var response = await raw.ReadHeadAsync();

        Assert.Equal(403, response.Status);
        Assert.Equal(Reasons.CredentialMisdirected, response["X-ChronoGuard-Reason"]);
    }

    [Fact]
    public async Task A_reload_that_takes_the_host_away_closes_an_open_inspected_tunnel_as_policy_revoked()
    {
        await using var rig = await InspectionRig.StartAsync();
        await using var run = Start(rig);
        await using var client = await TlsTunnelClient.OpenAsync(run.Proxy.EndPoint, $"{InspectionRig.Host}:{rig.Port}", InspectionRig.Host, rig.Ca.Certificate, extraHead: PolicyEngines.Credentials());
        await client.SendAsync($"GET /quiet/one HTTP/1.1\r\nHost: {InspectionRig.Host}:{rig.Port}\r\n\r\n");
        Assert.Equal(200, (await client.ReadResponseAsync()).Head.Status);
        await run.Records.WaitForClosesAsync(1);

        run.Policy.Reload($$"""
            { "version": 1, "defaultAction": "deny", "network": { "allowedPorts": [{{rig.Port}}], "allowPrivateDestinations": true },
              "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
              "policies": [ { "name": "p", "allowedDomains": ["{{InspectionRig.Opaque}}"] } ] }
            """);

        // The heartbeat rechecks the tunnel between its requests, as it does an opaque one.
        Assert.True(await client.ClosedAsync(timeoutMs: 15_000));
        await run.Records.WaitForClosesAsync(2);
        Assert.Equal([ProxyReasons.Complete, Reasons.PolicyRevoked], run.Records.Closes.Select(c => c.Reason));
    }

    [Fact]
    public async Task A_reload_that_adds_a_path_rule_closes_an_inner_event_stream_on_that_path()
    {
        await using var rig = await InspectionRig.StartAsync();
        await using var run = Start(rig);
        await using var client = await TlsTunnelClient.OpenAsync(run.Proxy.EndPoint, $"{InspectionRig.Host}:{rig.Port}", InspectionRig.Host, rig.Ca.Certificate, extraHead: PolicyEngines.Credentials());
        await client.SendAsync($"GET /sse HTTP/1.1\r\nHost: {InspectionRig.Host}:{rig.Port}\r\n\r\n");
        await client.ReadThroughAsync("data: one");

        // The host stays allowed and inspected; only the path is refused now.
        run.Policy.Reload(Json(rig.Port).Replace("\"^/admin(/|$)\"", "\"^/(admin|sse)(/|$)\"", StringComparison.Ordinal));

        Assert.True(await client.ClosedAsync(timeoutMs: 15_000));
        await run.Records.WaitForClosesAsync(2);
        Assert.Contains(run.Records.Closes, c => c.Reason == Reasons.PolicyRevoked && c.BytesDown > 0);
    }

    [Fact]
    public async Task Upstream_connections_are_shared_by_one_agent_tunnels_and_never_across_agents()
    {
        await using var rig = await InspectionRig.StartAsync();
        await using var run = Start(rig);
        var seen = new List<(string Agent, string Connection)>();
        var closes = 0;
        foreach (var agent in new[] { "bot", "bot", "reader", "bot", "reader" })
        {
            using var client = Client(rig, run.Proxy, agent);
            seen.Add((agent, await client.GetStringAsync(rig.Url("/conn"))));
            client.Dispose();
            // Tunnel and inner request closed: the upstream is back in the pool before the next tunnel.
            closes += 2;
            await run.Records.WaitForClosesAsync(closes);
        }

        Assert.Single(seen.Where(s => s.Agent == "bot").Select(s => s.Connection).Distinct());
        Assert.Single(seen.Where(s => s.Agent == "reader").Select(s => s.Connection).Distinct());
        Assert.Equal(2, seen.Select(s => s.Connection).Distinct().Count());
    }
}
