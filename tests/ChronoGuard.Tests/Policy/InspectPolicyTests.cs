using System.Diagnostics;
using System.Net;
using System.Text;
using ChronoGuard.Policy;
using ChronoGuard.Proxy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Policy;

/// <summary>
/// SPEC §7 "inspect": which tunnels are inspected, and how an inspected tunnel's own decision differs
/// from an opaque one's (method, path and user-agent conditions and bucket tokens are left to the
/// inner requests), at the policy and at the gate.
/// </summary>
public sealed class InspectPolicyTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 25, 10, 0, 0, TimeSpan.Zero);

    private const string Json = """
        {
          "version": 1, "defaultAction": "deny",
          "network": { "allowedPorts": [443, 80] },
          "agents": [
            { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["team"] },
            { "id": "other", "tokenSha256": "$TOKEN", "policies": ["plain"] }
          ],
          "policies": [
            { "name": "org", "priority": 500, "inspect": ["inherited.example"], "blockedDomains": ["blocked.example"] },
            { "name": "team", "priority": 100, "extends": ["org"],
              "allowedDomains": ["api.example", "*.svc.example", "inherited.example", "opaque.example", "open.example", "scoped.example", "scoped.example:8443", "blocked.example", "git.example"],
              "inspect": ["api.example", "*.svc.example", "scoped.example:8443", "blocked.example", "git.example", "ruled.example"],
              "rules": [
                { "name": "read-only", "priority": 1, "action": "deny",
                  "when": [ { "field": "domain", "op": "equals", "value": "api.example" }, { "field": "method", "op": "not_in", "value": ["GET", "HEAD"] } ] },
                { "name": "no-admin", "priority": 2, "action": "deny",
                  "when": [ { "field": "path", "op": "regex", "value": "^/admin(/|$)" } ] },
                { "name": "opaque-guard", "priority": 3, "action": "deny",
                  "when": [ { "field": "domain", "op": "equals", "value": "opaque.example" }, { "field": "method", "op": "not_equals", "value": "GET" } ] },
                { "name": "repos-only", "priority": 4, "action": "allow",
                  "when": [ { "field": "domain", "op": "equals", "value": "ruled.example" }, { "field": "path", "op": "starts_with", "value": "/repos/" } ] },
                { "name": "no-curl", "priority": 5, "action": "deny",
                  "when": [ { "field": "domain", "op": "equals", "value": "git.example" }, { "field": "user_agent", "op": "starts_with", "value": "curl/" } ] }
              ] },
            { "name": "plain", "priority": 100, "allowedDomains": ["api.example"] }
          ]
        }
        """;

    private readonly CompiledPolicy _policy = PolicyFixture.Compile(Json);

    private DecisionResult Tunnel(string agent, string host, int port = 443) =>
        _policy.Decide(_policy.AgentsById[agent], new RequestFacts(Encoding.ASCII.GetBytes(host), port, "CONNECT"u8, default, default, null, isConnect: true), Now, Stopwatch.GetTimestamp());

    private DecisionResult Inner(string host, string method, string path, string userAgent = "agent/1", CompiledPolicy? policy = null)
    {
        policy ??= _policy;
        var facts = new RequestFacts(Encoding.ASCII.GetBytes(host), 443, Encoding.ASCII.GetBytes(method), Encoding.ASCII.GetBytes(path), Encoding.ASCII.GetBytes(userAgent), null, isConnect: false);
        return policy.Decide(policy.AgentsById["bot"], facts, Now, Stopwatch.GetTimestamp());
    }

    [Theory]
    [InlineData("api.example", 443, true)]
    [InlineData("API.Example.", 443, true)]          // case and a trailing dot, as for allowedDomains
    [InlineData("a.svc.example", 443, true)]          // wildcard: any depth below…
    [InlineData("a.b.svc.example", 443, true)]
    [InlineData("inherited.example", 443, true)]      // through extends
    [InlineData("scoped.example", 8443, true)]        // a port-scoped pattern inspects on its port…
    [InlineData("scoped.example", 443, false)]        // …and only there
    [InlineData("open.example", 443, false)]          // allowed, not inspected: an opaque tunnel
    public void An_allowed_tunnel_is_inspected_when_an_inspect_pattern_of_the_agents_policies_matches(string host, int port, bool inspect)
    {
        var result = Tunnel("bot", host, port);

        Assert.True(result.IsAllow, result.Reason);
        Assert.Equal(inspect, result.Inspect);
    }

    [Fact]
    public void Another_agents_inspect_list_does_not_inspect_and_a_refusal_is_never_inspected()
    {
        // "other" is allowed on api.example by a policy without inspect: opaque for it.
        var other = Tunnel("other", "api.example");
        Assert.True(other.IsAllow);
        Assert.False(other.Inspect);

        // Inspected and blocked: blocked wins, nothing is terminated.
        var blocked = Tunnel("bot", "blocked.example");
        Assert.Equal(Decision.Block, blocked.Decision);
        Assert.False(blocked.Inspect);

        // Inspected but allowed nowhere (ruled.example has only a path-conditioned allow rule, tested
        // below); a.svc.example with a refused port is refused before any policy step.
        var port = Tunnel("bot", "a.svc.example", 22);
        Assert.Equal(Reasons.PortNotAllowed, port.Reason);
        Assert.False(port.Inspect);
    }

    [Fact]
    public void A_request_that_is_not_a_tunnel_is_never_inspected()
    {
        var inner = Inner("api.example", "GET", "/");

        Assert.True(inner.IsAllow);
        Assert.False(inner.Inspect);
    }

    [Theory]
    [InlineData("api.example")]   // a method condition (not_in: CONNECT would match it)
    [InlineData("git.example")]   // a user-agent condition
    public void An_inspected_tunnel_leaves_method_path_and_user_agent_rules_to_its_inner_requests(string host)
    {
        var tunnel = Tunnel("bot", host);

        Assert.True(tunnel.IsAllow, tunnel.Reason);
        Assert.True(tunnel.Inspect);
    }

    [Fact]
    public void An_opaque_tunnel_still_sees_CONNECT_as_its_method()
    {
        // The same shape of rule as read-only, on a host that is not inspected: CONNECT is not GET.
        var tunnel = Tunnel("bot", "opaque.example");

        Assert.Equal(Decision.PolicyViolation, tunnel.Decision);
        Assert.Equal("opaque-guard", tunnel.Rule);
        Assert.False(tunnel.Inspect);
    }

    [Theory]
    [InlineData("api.example", "GET", "/repos/a", "agent/1", "ALLOW", null)]
    [InlineData("api.example", "HEAD", "/", "agent/1", "ALLOW", null)]
    [InlineData("api.example", "POST", "/repos/a", "agent/1", "POLICY_VIOLATION", "read-only")]
    [InlineData("api.example", "DELETE", "/", "agent/1", "POLICY_VIOLATION", "read-only")]
    [InlineData("api.example", "GET", "/admin", "agent/1", "POLICY_VIOLATION", "no-admin")]
    [InlineData("api.example", "GET", "/admin/x", "agent/1", "POLICY_VIOLATION", "no-admin")]
    [InlineData("api.example", "GET", "/administrator", "agent/1", "ALLOW", null)]
    [InlineData("git.example", "GET", "/", "curl/8.5", "POLICY_VIOLATION", "no-curl")]
    [InlineData("git.example", "GET", "/", "git/2.45", "ALLOW", null)]
    public void Inner_requests_are_decided_like_plain_HTTP(string host, string method, string path, string userAgent, string decision, string? rule)
    {
        var result = Inner(host, method, path, userAgent);

        Assert.Equal(decision, DecisionNames.Name(result.Decision));
        Assert.Equal(rule, result.Rule);
    }

    [Fact]
    public void An_allow_rule_on_the_inner_request_opens_the_tunnel_and_then_judges_each_request()
    {
        // ruled.example is in no allowed list: only "allow path starts_with /repos/" names it.
        var tunnel = Tunnel("bot", "ruled.example");
        Assert.True(tunnel.IsAllow, tunnel.Reason);
        Assert.True(tunnel.Inspect);
        Assert.Equal("repos-only", tunnel.Rule);

        Assert.True(Inner("ruled.example", "GET", "/repos/x").IsAllow);
        Assert.Equal(Reasons.DefaultDeny, Inner("ruled.example", "GET", "/user").Reason);
    }

    [Fact]
    public void An_allow_rule_whose_other_conditions_fail_does_not_open_an_inspected_tunnel()
    {
        var policy = PolicyFixture.Compile("""
            {
              "version": 1, "defaultAction": "deny",
              "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
              "policies": [ { "name": "p", "inspect": ["ruled.example"],
                "rules": [ { "name": "r", "action": "allow",
                  "when": [ { "field": "domain", "op": "equals", "value": "ruled.example" }, { "field": "port", "op": "equals", "value": 8443 },
                            { "field": "path", "op": "starts_with", "value": "/" } ] } ] } ]
            }
            """);
        var facts = new RequestFacts("ruled.example"u8, 443, "CONNECT"u8, default, default, null, isConnect: true);

        var tunnel = policy.Decide(policy.AgentsById["bot"], facts, Now, 0);

        Assert.Equal(Reasons.DefaultDeny, tunnel.Reason);
        Assert.False(tunnel.Inspect);
    }

    [Fact]
    public void An_inspected_tunnel_takes_no_bucket_token_and_each_inner_request_takes_one()
    {
        var policy = PolicyFixture.Compile("""
            {
              "version": 1, "defaultAction": "deny",
              "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
              "policies": [ { "name": "p", "allowedDomains": ["api.example", "opaque.example"], "inspect": ["api.example"],
                "rateLimits": { "requestsPerMinute": 1, "burst": 2 },
                "rules": [ { "name": "limited", "action": "rate_limit", "when": [ { "field": "domain", "op": "ends_with", "value": "example" } ] } ] } ]
            }
            """);
        var bot = policy.AgentsById["bot"];
        var ticks = Stopwatch.GetTimestamp();
        DecisionResult Connect(string host) => policy.Decide(bot, new RequestFacts(Encoding.ASCII.GetBytes(host), 443, "CONNECT"u8, default, default, null, isConnect: true), Now, ticks);

        for (var i = 0; i < 5; i++)
        {
            var tunnel = Connect("api.example");
            Assert.True(tunnel.IsAllow, tunnel.Reason);
            Assert.True(tunnel.Inspect);
        }

        // Both tokens are still there for the first inner request, which takes two (the rate_limit rule's
        // and the allowed domain's); the second finds the bucket empty.
        Assert.True(Inner("api.example", "GET", "/", policy: policy).IsAllow);
        var second = Inner("api.example", "GET", "/", policy: policy);
        Assert.Equal(Decision.RateLimited, second.Decision);
        Assert.True(second.RetryAfterSeconds > 0);

        // An opaque tunnel still takes its token (none left).
        Assert.Equal(Decision.RateLimited, Connect("opaque.example").Decision);
    }

    [Fact]
    public void An_inspected_tunnel_outside_its_policys_time_window_is_refused_and_not_inspected()
    {
        var policy = PolicyFixture.Compile("""
            {
              "version": 1, "defaultAction": "deny",
              "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
              "policies": [ { "name": "p", "allowedDomains": ["api.example"], "inspect": ["api.example"],
                "timeRestrictions": { "timezone": "UTC", "ranges": [ { "start": "00:00", "end": "01:00" } ] } } ]
            }
            """);
        var facts = new RequestFacts("api.example"u8, 443, "CONNECT"u8, default, default, null, isConnect: true);

        var tunnel = policy.Decide(policy.AgentsById["bot"], facts, Now, 0);

        Assert.Equal(Decision.TimeRestricted, tunnel.Decision);
        Assert.False(tunnel.Inspect);
    }

    [Fact]
    public void Recheck_keeps_an_inspected_tunnel_that_a_method_rule_would_have_refused_as_CONNECT()
    {
        var bot = _policy.AgentsById["bot"];

        Assert.Equal(TunnelVerdict.Keep, _policy.Recheck(bot, "api.example"u8, 443, Now));
        Assert.Equal(TunnelVerdict.PolicyRevoked, _policy.Recheck(bot, "opaque.example"u8, 443, Now));
    }

    [Fact]
    public void Inspect_without_inspection_configured_is_a_load_error_naming_the_path()
    {
        var error = PolicyFixture.LoadError(Json, inspection: false);

        Assert.Contains("$.policies[0].inspect", error, StringComparison.Ordinal);
        Assert.Contains("Inspection:CaCertFile", error, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error);
    }

    [Theory]
    [InlineData("\"inspect\": [\"a..example\"]", "$.policies[0].inspect[0]")]
    [InlineData("\"inspect\": [\"\"]", "$.policies[0].inspect[0]")]
    [InlineData("\"inspect\": \"api.example\"", "$.policies[0].inspect")]
    [InlineData("\"inspect\": [1]", "$.policies[0].inspect[0]")]
    [InlineData("\"inspect\": [\"api.example:0\"]", "$.policies[0].inspect[0]")]
    public void A_bad_inspect_list_is_a_load_error_naming_the_entry(string member, string where)
    {
        var error = PolicyFixture.LoadError($$"""
            { "version": 1, "agents": [], "policies": [ { "name": "p", {{member}} } ] }
            """);

        Assert.Contains(where + ":", error, StringComparison.Ordinal);
    }

    [Fact]
    public void The_inspected_decision_allocates_nothing()
    {
        var bot = _policy.AgentsById["bot"];
        var sum = 0;
        var allocated = Allocations.Least(() =>
        {
            sum += _policy.Decide(bot, new RequestFacts("api.example"u8, 443, "CONNECT"u8, default, default, null, true), Now, 0).Inspect ? 1 : 0;
            sum += _policy.Decide(bot, new RequestFacts("ruled.example"u8, 443, "CONNECT"u8, default, default, null, true), Now, 0).Inspect ? 1 : 0;
            sum += _policy.Decide(bot, new RequestFacts("opaque.example"u8, 443, "CONNECT"u8, default, default, null, true), Now, 0).Status;
            sum += _policy.Decide(bot, new RequestFacts("api.example"u8, 443, "POST"u8, "/repos"u8, "agent/1"u8, null, false), Now, 0).Status;
        });

        Assert.Equal(0, allocated);
        Assert.True(sum > 0);
    }

    /// <summary>The gate sets <see cref="RequestDecision.Inspect"/> for both tunnel front ends, and only on an allowed tunnel that holds its slot.</summary>
    [Theory]
    [InlineData("Connect", "api.example", true)]
    [InlineData("Socks", "api.example", true)]
    [InlineData("Connect", "open.example", false)]
    [InlineData("Http", "api.example", false)]
    [InlineData("Inspected", "api.example", false)]
    public void The_gate_marks_allowed_tunnels_to_inspect(string way, string host, bool inspect)
    {
        var frontEnd = Enum.Parse<FrontEnd>(way);
        using var engines = new PolicyEngines(Json);
        var gate = new PolicyGate(engines.Engine, TimeProvider.System);
        var tunnel = frontEnd is FrontEnd.Connect or FrontEnd.Socks;

        var decision = gate.Decide(new ConnectionInfo(1, new IPEndPoint(IPAddress.Loopback, 1)), new GateRequest
        {
            FrontEnd = frontEnd,
            Host = Encoding.ASCII.GetBytes(host),
            Port = 443,
            Method = tunnel ? default : "GET"u8,
            Path = tunnel ? default : "/"u8,
            Credentials = AgentCredentials.FromHeader(PolicyFixture.Basic("bot")),
        });

        Assert.True(decision.Result.IsAllow, decision.Result.Reason);
        Assert.Equal(inspect, decision.Inspect);
        Assert.Null(decision.Credential);
    }

    [Fact]
    public void The_gate_decides_an_inspected_inner_request_on_its_method_and_path()
    {
        using var engines = new PolicyEngines(Json);
        var gate = new PolicyGate(engines.Engine, TimeProvider.System);
        RequestDecision Decide(ReadOnlySpan<byte> method, ReadOnlySpan<byte> path) => gate.Decide(new ConnectionInfo(1, null), new GateRequest
        {
            FrontEnd = FrontEnd.Inspected,
            Host = "api.example"u8,
            Port = 443,
            Method = method,
            Path = path,
            Credentials = AgentCredentials.FromHeader(PolicyFixture.Basic("bot")),
        });

        Assert.True(Decide("GET"u8, "/repos/a"u8).Result.IsAllow);
        Assert.Equal("read-only", Decide("POST"u8, "/repos/a"u8).Result.Rule);
        Assert.Equal("no-admin", Decide("GET"u8, "/admin"u8).Result.Rule);
    }

    [Fact]
    public void A_tunnel_refused_for_the_tunnel_limit_is_not_inspected()
    {
        using var engines = new PolicyEngines(Json, maxTunnels: 1);
        var gate = new PolicyGate(engines.Engine, TimeProvider.System);
        RequestDecision Connect() => gate.Decide(new ConnectionInfo(1, null), new GateRequest
        {
            FrontEnd = FrontEnd.Connect,
            Host = "api.example"u8,
            Port = 443,
            Credentials = AgentCredentials.FromHeader(PolicyFixture.Basic("bot")),
        });

        var first = Connect();
        var second = Connect();

        Assert.True(first.Inspect);
        Assert.Equal(Reasons.TunnelLimit, second.Result.Reason);
        Assert.False(second.Inspect);
    }

    /// <summary>
    /// A reload that starts (or stops) inspecting a host closes the tunnels opened the other way:
    /// otherwise an opaque tunnel opened before the reload would carry requests past the new path rules.
    /// </summary>
    [Fact]
    public void A_reload_that_changes_whether_a_host_is_inspected_revokes_its_open_tunnels()
    {
        const string Before = """
            { "version": 1, "defaultAction": "deny",
              "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
              "policies": [ { "name": "p", "allowedDomains": ["a.example", "b.example", "c.example"], "inspect": ["b.example", "c.example"] } ] }
            """;
        using var engines = new PolicyEngines(Before);
        var gate = new PolicyGate(engines.Engine, TimeProvider.System);
        RequestDecision Connect(string host)
        {
            var decision = gate.Decide(new ConnectionInfo(1, null), new GateRequest
            {
                FrontEnd = FrontEnd.Connect,
                Host = Encoding.ASCII.GetBytes(host),
                Port = 443,
                Credentials = AgentCredentials.FromHeader(PolicyFixture.Basic("bot")),
            });
            (decision.Host, decision.Port) = (host, 443); // what the scope sets after the decision
            return decision;
        }

        // What the scope describes at a tunnel's recheck: its host and port.
        static GateRequest Tunnel(in RequestDecision d) => new() { FrontEnd = FrontEnd.Connect, Host = Encoding.ASCII.GetBytes(d.Host), Port = d.Port };

        var a = Connect("a.example");
        var b = Connect("b.example");
        var c = Connect("c.example");
        Assert.Equal((false, true, true), (a.Inspect, b.Inspect, c.Inspect));
        Assert.Null(gate.Recheck(a, Tunnel(a)));
        Assert.Null(gate.Recheck(b, Tunnel(b)));

        engines.Reload(Before.Replace("\"inspect\": [\"b.example\", \"c.example\"]", "\"inspect\": [\"a.example\", \"c.example\"]", StringComparison.Ordinal));

        Assert.Equal(Reasons.PolicyRevoked, gate.Recheck(a, Tunnel(a))); // now inspected: reopen to be inspected
        Assert.Equal(Reasons.PolicyRevoked, gate.Recheck(b, Tunnel(b))); // no longer inspected
        Assert.Null(gate.Recheck(c, Tunnel(c)));                         // unchanged
    }
}
