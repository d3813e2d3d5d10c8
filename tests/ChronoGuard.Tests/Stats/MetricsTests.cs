using System.Buffers;
using System.Net;
using System.Text;
using System.Text.Json;
using ChronoGuard.Metrics;
using ChronoGuard.Policy;
using ChronoGuard.Proxy;
using ChronoGuard.Stats;
using ChronoGuard.Tests.Policy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Stats;

public sealed class MetricsTests
{
    private static string Render(Func<IBufferWriter<byte>, (int, string)> render)
    {
        var buffer = new ArrayBufferWriter<byte>();
        render(buffer);
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    [Fact]
    public void Label_values_and_help_text_are_escaped_so_a_strict_parser_reads_them_back()
    {
        var buffer = new ArrayBufferWriter<byte>();
        var w = new PrometheusWriter(buffer);
        w.Family("t_total", "counter", "help with \\ backslash and\nline feed");
        w.Sample("t_total").Label("agent", "a\"b\\c\nd").Label("decision", "ALLOW").Value(3);
        w.Sample("t_total").Label("agent", "ünï").Label("decision", "ALLOW").Value(4);

        var families = PrometheusText.Parse(Encoding.UTF8.GetString(buffer.WrittenSpan));

        Assert.Equal("help with \\ backslash and\nline feed", families["t_total"].Help);
        Assert.Equal(3, families.Value("t_total", ("agent", "a\"b\\c\nd"), ("decision", "ALLOW")));
        Assert.Equal(4, families.Value("t_total", ("agent", "ünï"), ("decision", "ALLOW")));
    }

    [Fact]
    public void The_strict_parser_rejects_what_the_format_forbids()
    {
        Assert.Throws<FormatException>(() => PrometheusText.Parse("x_total 1\n"));
        Assert.Throws<FormatException>(() => PrometheusText.Parse("# HELP x h\n# TYPE x gauge\nx{a=\"1\"} 1\nx{a=\"1\"} 2\n"));
        Assert.Throws<FormatException>(() => PrometheusText.Parse("# HELP x h\n# TYPE x gauge\nx{a=\"\\q\"} 1\n"));
        Assert.Throws<FormatException>(() => PrometheusText.Parse(
            "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 5\nh_bucket{le=\"+Inf\"} 4\nh_sum 1\nh_count 4\n"));
    }

    [Fact]
    public void The_reason_label_takes_only_values_from_the_fixed_table_and_other()
    {
        var m = new AgentMetrics(DecisionReasons.Labels);
        m.Count(Decision.Block, Reasons.DomainBlocked);
        m.Count(Decision.Deny, "auth_required");
        m.Count(Decision.Allow, "upstream_timeout");
        m.Count(Decision.Deny, ChronoGuard.Http.ParseErrors.Reason(ChronoGuard.Http.ParseError.BadChunkSize));
        m.Count(Decision.Allow, "grant:INC-4711");
        m.Count(Decision.Deny, "made_up_" + Guid.NewGuid().ToString("N"));
        m.Count(Decision.Deny, null);

        Assert.Equal(1, m.Decisions(Decision.Block, DecisionReasons.IndexOf(Reasons.DomainBlocked)));
        Assert.Equal(1, m.Decisions(Decision.Deny, DecisionReasons.IndexOf("auth_required")));
        Assert.Equal(1, m.Decisions(Decision.Allow, DecisionReasons.IndexOf("upstream_timeout")));
        Assert.Equal(1, m.Decisions(Decision.Deny, DecisionReasons.IndexOf("bad_chunk_size")));
        Assert.Equal(1, m.Decisions(Decision.Allow, DecisionReasons.IndexOf("grant")));
        Assert.Equal(2, m.Decisions(Decision.Deny, DecisionReasons.IndexOf(DecisionReasons.Other)));
        Assert.Equal(4, m.Decisions(Decision.Deny));
        Assert.Equal(DecisionReasons.Names.Length, DecisionReasons.Names.Distinct().Count());
        Assert.True(DecisionReasons.Count < 128, "the label set must stay small and fixed");
    }

    /// <summary>Every policy reason and every parser refusal has its own label value (not "other").</summary>
    [Fact]
    public void Every_reason_the_policy_and_the_parser_produce_is_in_the_table()
    {
        var policyReasons = typeof(Reasons).GetFields().Where(f => f.IsLiteral).Select(f => (string)f.GetRawConstantValue()!);
        var parserReasons = Enum.GetValues<ChronoGuard.Http.ParseError>().Where(e => e != ChronoGuard.Http.ParseError.None).Select(ChronoGuard.Http.ParseErrors.Reason);
        foreach (var reason in policyReasons.Concat(parserReasons))
        {
            Assert.NotEqual(0, DecisionReasons.IndexOf(reason));
        }

        foreach (var reason in new[] { "auth_required", "audit_unavailable", "header_timeout", "tunnel_limit", "egress_budget", "sni_mismatch", "sni_missing", "not_tls", "sni_timeout", "upstream_unresolved", "max_connections" })
        {
            Assert.NotEqual(0, DecisionReasons.IndexOf(reason));
        }
    }

    [Fact]
    public void Counting_a_decision_allocates_nothing()
    {
        var m = new AgentMetrics(DecisionReasons.Labels);
        var rounds = 0;
        var allocated = Allocations.Least(() =>
        {
            rounds++;
            m.Count(Decision.Allow, Reasons.Allowed);
            m.Count(Decision.Deny, "not_in_the_table");
            m.Count(Decision.Allow, "grant:x");
        });

        Assert.Equal(0, allocated);
        Assert.Equal(2 * rounds, m.Decisions(Decision.Allow));
    }

    [Fact]
    public async Task Counters_equal_the_traffic_sent_per_agent_and_decision()
    {
        await using var origin = await KestrelOrigin.StartAsync();
        using var dir = new TempDir();
        var path = dir.File("policy.json");
        File.WriteAllText(path, $$"""
            {
              "version": 1,
              "network": { "allowedCidrs": ["127.0.0.0/8"], "allowedPorts": [{{origin.Port}}] },
              "agents": [ { "id": "bot", "tokenSha256": "{{PolicyFixture.TokenSha}}", "policies": ["p"] } ],
              "policies": [ { "name": "p", "allowedDomains": ["127.0.0.1"], "blockedDomains": ["blocked.test"] } ]
            }
            """);
        var engine = new PolicyEngine(path, 512, TimeProvider.System);
        Assert.True(engine.Reload().Ok);
        var gate = new PolicyGate(engine, TimeProvider.System);
        await using var proxy = TestProxy.Start(gate: gate);
        var auth = "Proxy-Authorization: " + Encoding.ASCII.GetString(PolicyFixture.Basic("bot")) + "\r\n";

        async Task<int> Send(string host, string headers)
        {
            using var client = await RawClient.ConnectAsync(proxy.EndPoint);
            await client.SendAsync($"GET http://{host}/hello HTTP/1.1\r\nHost: {host}\r\n{headers}Connection: close\r\n\r\n");
            var status = (await client.ReadHeadAsync()).Status;
            await client.ReadToEndAsync();
            return status;
        }

        var sent = new Dictionary<(string Agent, string Decision), int>();
        async Task Expect(string agent, string decision, int status, string host, string headers, int times)
        {
            for (var i = 0; i < times; i++)
            {
                Assert.Equal(status, await Send(host, headers));
            }

            sent[(agent, decision)] = sent.GetValueOrDefault((agent, decision)) + times;
        }

        await Expect("bot", "ALLOW", 200, $"127.0.0.1:{origin.Port}", auth, 5);
        await Expect("bot", "BLOCK", 403, $"blocked.test:{origin.Port}", auth, 3);
        await Expect("bot", "DENY", 403, $"elsewhere.test:{origin.Port}", auth, 2);
        await Expect("", "DENY", 407, $"127.0.0.1:{origin.Port}", string.Empty, 4);
        using (var malformed = await RawClient.ConnectAsync(proxy.EndPoint))
        {
            await malformed.SendAsync("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
            Assert.Equal(400, (await malformed.ReadHeadAsync()).Status);
            sent[("", "DENY")] += 1;
        }

        var endpoints = new StatsEndpoints(gate.Metrics, engine, proxy.Server, null, "test");
        var families = PrometheusText.Parse(Render(endpoints.RenderMetrics));

        foreach (var agent in new[] { "", "bot" })
        {
            foreach (var decision in new[] { "ALLOW", "DENY", "BLOCK", "POLICY_VIOLATION", "TIME_RESTRICTED", "RATE_LIMITED" })
            {
                Assert.Equal(sent.GetValueOrDefault((agent, decision)), families.Sum("chronoguard_decisions_total", ("agent", agent), ("decision", decision)));
            }
        }

        // Each series names its reason; only pairs that occurred are exported.
        Assert.Equal(5, families.Value("chronoguard_decisions_total", ("agent", "bot"), ("decision", "ALLOW"), ("reason", "allowed")));
        Assert.Equal(3, families.Value("chronoguard_decisions_total", ("agent", "bot"), ("decision", "BLOCK"), ("reason", "domain_blocked")));
        Assert.Equal(2, families.Value("chronoguard_decisions_total", ("agent", "bot"), ("decision", "DENY"), ("reason", "default_deny")));
        Assert.Equal(4, families.Value("chronoguard_decisions_total", ("agent", ""), ("decision", "DENY"), ("reason", "auth_required")));
        Assert.Equal(1, families.Value("chronoguard_decisions_total", ("agent", ""), ("decision", "DENY"), ("reason", "not_a_proxy_request")));
        Assert.Equal(5, families["chronoguard_decisions_total"].Samples.Count);

        // Every decided request is timed once (the malformed one never reached a decision); each allowed one connected upstream.
        Assert.Equal(14, families.Value("chronoguard_decision_duration_seconds_count"));
        Assert.Equal(5, families.Value("chronoguard_upstream_connect_duration_seconds_count"));
        Assert.Equal("counter", families["chronoguard_policy_reloads_total"].Type);

        // The sketches saw every authenticated request's host (the 4 refused 407 are not counted, SPEC §5):
        // counts are exact at this size.
        Assert.Equal(5, families.Value("chronoguard_top_domain_requests", ("domain", "127.0.0.1")));
        Assert.Equal(3, families.Value("chronoguard_top_domain_requests", ("domain", "blocked.test")));
        Assert.Equal(2, families.Value("chronoguard_top_domain_requests", ("domain", "elsewhere.test")));
        Assert.Equal(3, families.Value("chronoguard_distinct_domains", ("agent", "bot")));
        Assert.Equal(0, families.Value("chronoguard_distinct_domains", ("agent", "")));
        Assert.Equal(3, families.Value("chronoguard_new_domains_5m", ("agent", "bot")));

        using var stats = JsonDocument.Parse(Render(endpoints.RenderStats));
        var byAgent = stats.RootElement.GetProperty("decisionsByAgent");
        Assert.Equal(5, byAgent.GetProperty("bot").GetProperty("ALLOW").GetInt64());
        Assert.Equal(5, byAgent.GetProperty("").GetProperty("DENY").GetInt64());
        var reasons = stats.RootElement.GetProperty("decisionReasonsByAgent");
        Assert.Equal(3, reasons.GetProperty("bot").GetProperty("BLOCK").GetProperty("domain_blocked").GetInt64());
        Assert.Equal(4, reasons.GetProperty("").GetProperty("DENY").GetProperty("auth_required").GetInt64());
        Assert.Equal("127.0.0.1", stats.RootElement.GetProperty("topDomains")[0].GetProperty("domain").GetString());
        Assert.Equal(3, stats.RootElement.GetProperty("distinctDomains").GetProperty("byAgent").GetProperty("bot").GetProperty("estimate").GetInt64());
        Assert.Equal(3, stats.RootElement.GetProperty("distinctDomains").GetProperty("total").GetProperty("estimate").GetInt64());
        Assert.Equal(3, stats.RootElement.GetProperty("newDomains5m").GetProperty("bot").GetInt64());
    }

    /// <summary>
    /// An agent's counters are kept by its index, which reloads keep: they only go up across a reload that
    /// drops the agent and one that brings it back, and an agent a reload adds gets counters of its own.
    /// </summary>
    [Fact]
    public async Task Decision_counters_survive_reloads_and_an_agent_a_reload_adds_gets_its_own()
    {
        await using var origin = await KestrelOrigin.StartAsync();
        string Policy(params string[] agents) => $$"""
            {
              "version": 1,
              "network": { "allowedCidrs": ["127.0.0.0/8"], "allowedPorts": [{{origin.Port}}] },
              "agents": [ {{string.Join(", ", agents.Select(a => "{ \"id\": \"" + a + "\", \"tokenSha256\": \"$TOKEN\", \"policies\": [\"p\"] }"))}} ],
              "policies": [ { "name": "p", "allowedDomains": ["127.0.0.1"] } ]
            }
            """;
        using var policy = new PolicyEngines(Policy("bot"));
        var metrics = new ProxyMetrics(DecisionReasons.Labels);
        await using var proxy = TestProxy.Start(gate: new PolicyGate(policy.Engine, TimeProvider.System, null, metrics));

        async Task Send(string agent, int status)
        {
            using var client = await RawClient.ConnectAsync(proxy.EndPoint);
            await client.SendAsync($"GET http://127.0.0.1:{origin.Port}/hello HTTP/1.1\r\nHost: 127.0.0.1:{origin.Port}\r\n{PolicyEngines.Credentials(agent)}Connection: close\r\n\r\n");
            Assert.Equal(status, (await client.ReadHeadAsync()).Status);
            await client.ReadToEndAsync();
        }

        await Send("bot", 200);
        await Send("bot", 200);
        policy.Reload(Policy("bot", "added"));
        await Send("added", 200);
        await Send("bot", 200);
        policy.Reload(Policy("added"));
        await Send("bot", 407);
        policy.Reload(Policy("bot", "added"));
        await Send("bot", 200);

        var families = PrometheusText.Parse(Render(new StatsEndpoints(metrics, policy.Engine, proxy.Server, null, "test").RenderMetrics));
        Assert.Equal(4, families.Value("chronoguard_decisions_total", ("agent", "bot"), ("decision", "ALLOW"), ("reason", "allowed")));
        Assert.Equal(1, families.Value("chronoguard_decisions_total", ("agent", "added"), ("decision", "ALLOW"), ("reason", "allowed")));
        Assert.Equal(1, families.Sum("chronoguard_decisions_total", ("agent", ""), ("decision", "DENY")));
        Assert.Equal(3, families["chronoguard_decisions_total"].Samples.Count);
    }

    [Fact]
    public async Task The_sidecar_serves_metrics_and_stats_on_GET_only()
    {
        using var dir = new TempDir();
        await using var origin = await KestrelOrigin.StartAsync();
        await using var sidecar = await SidecarProcess.StartAsync(dir.Path);
        using var handler = new SocketsHttpHandler { Proxy = new WebProxy($"http://{sidecar.ProxyEndPoint}"), UseProxy = true };
        using (var viaProxy = new HttpClient(handler))
        {
            Assert.Equal("hello from origin", await viaProxy.GetStringAsync(new Uri($"http://127.0.0.1:{origin.Port}/hello")));
        }

        using var http = new HttpClient { BaseAddress = new Uri($"http://{sidecar.StatsEndPoint}") };
        using var metrics = await http.GetAsync(new Uri("/metrics", UriKind.Relative));
        Assert.Equal("text/plain; version=0.0.4; charset=utf-8", metrics.Content.Headers.ContentType!.ToString());
        var families = PrometheusText.Parse(await metrics.Content.ReadAsStringAsync());
        Assert.Equal(1, families.Sum("chronoguard_decisions_total", ("agent", "anonymous"), ("decision", "ALLOW")));
        Assert.True(families.Value("chronoguard_audit_records_total") >= 0);
        foreach (var name in new[] { "chronoguard_connections_active", "chronoguard_bytes_total", "chronoguard_audit_queue_depth", "chronoguard_audit_commit_duration_seconds", "chronoguard_policy_reloads_total" })
        {
            Assert.True(families.ContainsKey(name), name);
        }

        using var stats = JsonDocument.Parse(await http.GetStringAsync(new Uri("/stats", UriKind.Relative)));
        Assert.Equal(1, stats.RootElement.GetProperty("decisionsByAgent").GetProperty("anonymous").GetProperty("ALLOW").GetInt64());
        Assert.True(stats.RootElement.GetProperty("audit").GetProperty("healthy").GetBoolean());

        Assert.Equal(0, await ChronoGuard.Sidecar.Cli.HealthcheckCommand.RunAsync(["--stats", sidecar.StatsEndPoint.ToString()], TextWriter.Null, TextWriter.Null));
        Assert.Equal(1, await ChronoGuard.Sidecar.Cli.HealthcheckCommand.RunAsync(["--stats", sidecar.StatsEndPoint.ToString(), "--path", "/nope"], TextWriter.Null, TextWriter.Null));

        using var post = await http.PostAsync(new Uri("/metrics", UriKind.Relative), new StringContent("x"));
        Assert.Equal(HttpStatusCode.MethodNotAllowed, post.StatusCode);
    }

    [Fact]
    public async Task Build_policy_and_last_reload_are_exported_and_follow_a_reload()
    {
        using var dir = new TempDir();
        var path = dir.File("policy.json");
        File.WriteAllText(path, """{ "version": 1, "defaultAction": "deny", "policies": [ { "name": "a" } ] }""");
        var started = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        await using var sidecar = await SidecarProcess.StartAsync(dir.Path, ["--policy", path], new Dictionary<string, string> { ["CHRONOGUARD__Policy__Watch"] = "false" });
        using var http = new HttpClient { BaseAddress = new Uri($"http://{sidecar.StatsEndPoint}") };
        static string Sha(string file) => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(file)));

        var first = PrometheusText.Parse(await http.GetStringAsync(new Uri("/metrics", UriKind.Relative)));
        Assert.Equal(1, first.Value("chronoguard_build_info", ("version", ChronoGuard.Sidecar.Cli.CommandLine.Version)));
        Assert.Equal(1, first.Value("chronoguard_policy_info", ("sha256", Sha(path)), ("mode", "enforce")));
        var loaded = first.Value("chronoguard_policy_last_reload_success_timestamp_seconds");
        Assert.InRange(loaded * 1000, started - 1, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + 1);

        // A rejected reload changes neither; a good one moves both.
        File.WriteAllText(path, "{ not json");
        sidecar.Signal("HUP");
        await sidecar.WaitForOutputAsync(l => l.Contains("rejected, the previous policy stays", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
        var rejected = PrometheusText.Parse(await http.GetStringAsync(new Uri("/metrics", UriKind.Relative)));
        Assert.Equal(1, rejected.Value("chronoguard_policy_info", ("sha256", first["chronoguard_policy_info"].Samples[0].Labels["sha256"]), ("mode", "enforce")));
        Assert.Equal(loaded, rejected.Value("chronoguard_policy_last_reload_success_timestamp_seconds"));

        File.WriteAllText(path, """{ "version": 1, "mode": "observe", "policies": [ { "name": "b" } ] }""");
        var beforeReload = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        sidecar.Signal("HUP");
        await sidecar.WaitForOutputAsync(l => l.Contains("policy reloaded (SIGHUP)", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
        var reloaded = PrometheusText.Parse(await http.GetStringAsync(new Uri("/metrics", UriKind.Relative)));
        Assert.Equal(1, reloaded.Value("chronoguard_policy_info", ("sha256", Sha(path)), ("mode", "observe")));
        Assert.Single(reloaded["chronoguard_policy_info"].Samples);
        Assert.True(reloaded.Value("chronoguard_policy_last_reload_success_timestamp_seconds") * 1000 >= beforeReload - 1);

        // Prometheus' own linter accepts the whole page (names, types, help, info-style gauges).
        await ExternalTools.EnsureAsync("promtool");
        var (code, lint) = await ExternalTools.RunAsync("promtool", ["check", "metrics"], TimeSpan.FromSeconds(60), await http.GetStringAsync(new Uri("/metrics", UriKind.Relative)));
        Assert.True(code == 0 && lint.Trim().Length == 0, $"promtool check metrics: exit {code}: {lint}");
    }
}
