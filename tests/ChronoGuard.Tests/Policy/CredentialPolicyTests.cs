using System.Net;
using System.Text;
using ChronoGuard.Policy;
using ChronoGuard.Proxy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Policy;

/// <summary>
/// SPEC §7 <c>credentials</c> at the policy and the gate: how they load (secrets from files and the
/// environment, one-line errors that never hold the secret), where a placeholder is bound, and the
/// order after ALLOW (misdirected, required, window, rate, then injection).
/// </summary>
public sealed class CredentialPolicyTests : IDisposable
{
    private const string Secret = "ghp_S3cretValue-0123456789";
    private const string Placeholder = "cg-placeholder-github";
    private const string OtherPlaceholder = "cg-placeholder-search";

    private readonly TempDir _dir = new();

    public CredentialPolicyTests() => File.WriteAllText(_dir.File("github.secret"), Secret + "\n");

    public void Dispose() => _dir.Dispose();

    /// <summary>bot and reader may use the proxy; only bot is listed in the credentials.</summary>
    private static string Json(string github = "", string search = "", string rules = "", string mode = "enforce") => $$"""
        {
          "version": 1, "mode": "{{mode}}", "defaultAction": "deny",
          "network": { "allowedPorts": [443, 80] },
          "agents": [
            { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] },
            { "id": "reader", "tokenSha256": "$TOKEN", "policies": ["p"] }
          ],
          "policies": [ { "name": "p",
            "allowedDomains": ["api.example", "*.svc.example", "plain.example"],
            "inspect": ["api.example", "*.svc.example"],
            "rules": [ {{rules}} ] } ],
          "credentials": [
            { "name": "github-api", "agents": ["bot"], "domains": ["api.example"], "header": "Authorization",
              "value": "Bearer {secret}", "secretFile": "github.secret", "placeholder": "{{Placeholder}}"{{github}} },
            { "name": "search", "agents": ["bot", "reader"], "domains": ["*.svc.example"], "header": "X-Api-Key",
              "value": "{secret}", "secretEnv": "CG_TEST_SEARCH_SECRET", "placeholder": "{{OtherPlaceholder}}"{{search}} }
          ]
        }
        """;

    static CredentialPolicyTests() => Environment.SetEnvironmentVariable("CG_TEST_SEARCH_SECRET", "search-secret-value\r\n");

    private string WritePolicy(string json)
    {
        var path = _dir.File("policy.json");
        File.WriteAllText(path, json.Replace("$TOKEN", PolicyFixture.TokenSha, StringComparison.Ordinal));
        return path;
    }

    private CompiledPolicy Compile(string json, bool inspection = true) =>
        PolicyLoader.Load(WritePolicy(json), new AgentRegistry(), 512, out _, inspection);

    private string LoadError(string json, bool inspection = true)
    {
        var outcome = PolicyLoader.TryLoad(WritePolicy(json), new AgentRegistry(), 512, inspection);
        Assert.False(outcome.Ok);
        Assert.DoesNotContain(Secret, outcome.Error!, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', outcome.Error!);
        return outcome.Error!;
    }

    private PolicyGate Gate(string json, out PolicyEngine engine)
    {
        engine = new PolicyEngine(WritePolicy(json), 512, TimeProvider.System) { InspectionConfigured = true };
        Assert.True(engine.Reload().Ok);
        return new PolicyGate(engine, TimeProvider.System);
    }

    private static RequestDecision Decide(PolicyGate gate, string way, string host, string head, string agent = "bot", string method = "GET", string path = "/")
    {
        var frontEnd = Enum.Parse<FrontEnd>(way);
        var tunnel = frontEnd is FrontEnd.Connect or FrontEnd.Socks;
        return gate.Decide(new ConnectionInfo(1, new IPEndPoint(IPAddress.Loopback, 1)), new GateRequest
        {
            FrontEnd = frontEnd,
            Host = Encoding.ASCII.GetBytes(host),
            Port = 443,
            Method = tunnel ? default : Encoding.ASCII.GetBytes(method),
            Path = tunnel ? default : Encoding.ASCII.GetBytes(path),
            Credentials = AgentCredentials.FromHeader(PolicyFixture.Basic(agent)),
            RawHead = Encoding.ASCII.GetBytes(head),
        });
    }

    private static string Inner(string host, string headers = "", string target = "/") =>
        $"GET {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: agent/1\r\n{headers}\r\n";

    [Fact]
    public void A_credential_compiles_with_its_secret_in_the_header_value_only()
    {
        var policy = Compile(Json());

        var github = policy.Credentials[0];
        Assert.Equal("github-api", github.Name);
        Assert.Equal("Authorization"u8.ToArray(), github.HeaderName);
        Assert.Equal("Bearer " + Secret, Encoding.ASCII.GetString(github.HeaderValue)); // the file's trailing newline trimmed
        Assert.Equal(Placeholder, Encoding.ASCII.GetString(github.Placeholder));
        Assert.Equal("github-api", github.ToString());
        Assert.DoesNotContain(Secret, github.Source, StringComparison.Ordinal);

        var search = policy.Credentials[1];
        Assert.Equal("search-secret-value", Encoding.ASCII.GetString(search.HeaderValue)); // CRLF trimmed
        Assert.Equal("env:CG_TEST_SEARCH_SECRET", search.Source);
    }

    public static TheoryData<string, string, string> Errors() => new()
    {
        // JSON transform (old → new), where, words
        { "\"agents\": [\"bot\"], \"domains\": [\"api.example\"]→\"agents\": [\"ghost\"], \"domains\": [\"api.example\"]", "$.credentials[0].agents[0]", "unknown agent \"ghost\"" },
        { "\"domains\": [\"api.example\"]→\"domains\": [\"plain.example\"]", "$.credentials[0].domains[0]", "not inspected by any policy of agent \"bot\"" },
        { "\"domains\": [\"api.example\"]→\"domains\": [\"*.example\"]", "$.credentials[0].domains[0]", "not inspected" },
        { "\"domains\": [\"api.example\"]→\"domains\": [\"api.example:443\"]", "$.credentials[0].domains[0]", "takes no port" },
        { "\"domains\": [\"api.example\"]→\"domains\": []", "$.credentials[0].domains", "is required" },
        { "\"header\": \"Authorization\"→\"header\": \"Host\"", "$.credentials[0].header", "cannot carry a credential" },
        { "\"header\": \"Authorization\"→\"header\": \"Proxy-Authorization\"", "$.credentials[0].header", "cannot carry a credential" },
        { "\"header\": \"Authorization\"→\"header\": \"Bad Header\"", "$.credentials[0].header", "not an HTTP header name" },
        { "\"value\": \"Bearer {secret}\"→\"value\": \"Bearer\"", "$.credentials[0].value", "must contain {secret}" },
        { "\"secretFile\": \"github.secret\"→\"secretFile\": \"missing.secret\"", "$.credentials[0].secretFile", "missing.secret" },
        { "\"secretFile\": \"github.secret\"→\"secretFile\": \"github.secret\", \"secretEnv\": \"X\"", "$.credentials[0]", "exactly one of secretFile and secretEnv" },
        { "\"secretFile\": \"github.secret\", →", "$.credentials[0]", "exactly one of secretFile and secretEnv" },
        { "\"secretEnv\": \"CG_TEST_SEARCH_SECRET\"→\"secretEnv\": \"CG_TEST_UNSET_VARIABLE\"", "$.credentials[1].secretEnv", "CG_TEST_UNSET_VARIABLE is not set" },
        { $"\"placeholder\": \"{Placeholder}\"→\"placeholder\": \"short\"", "$.credentials[0].placeholder", "8 to 256" },
        { $"\"placeholder\": \"{OtherPlaceholder}\"→\"placeholder\": \"{Placeholder}-2\"", "$.credentials[1].placeholder", "overlaps the placeholder of credential \"github-api\"" },
        { "\"name\": \"search\"→\"name\": \"github-api\"", "$.credentials[1].name", "duplicate credential name" },
        { "\"name\": \"search\"→\"name\": \"" + new string('s', 65) + "\"", "$.credentials[1].name", "longer than 64 bytes" },
        { "\"domains\": [\"*.svc.example\"]→\"domains\": [\"*.svc.example\", \"api.example\"]", "$.credentials[1].domains[1]", "overlaps \"api.example\" of credential \"github-api\" for agent \"bot\"" },
        { "\"rateLimits\": 1→\"rateLimits\": { \"requestsPerHour\": 0 }", "$.credentials[0].rateLimits.requestsPerHour", "greater than 0" },
        { "\"bogus\": 1→\"bogus\": 1", "$.credentials[0]", "unknown key \"bogus\"" },
    };

    [Theory]
    [MemberData(nameof(Errors))]
    public void A_bad_credential_is_one_line_naming_its_JSON_path(string change, string where, string words)
    {
        var (from, to) = (change.Split('→')[0], change.Split('→')[1]);
        var json = Json(github: from.StartsWith("\"rateLimits\"", StringComparison.Ordinal) || from.StartsWith("\"bogus\"", StringComparison.Ordinal) ? ", " + to : string.Empty);
        if (!from.StartsWith("\"rateLimits\"", StringComparison.Ordinal) && !from.StartsWith("\"bogus\"", StringComparison.Ordinal))
        {
            var at = json.IndexOf(from, StringComparison.Ordinal);
            Assert.True(at >= 0, from);
            json = json[..at] + to + json[(at + from.Length)..];
        }

        var error = LoadError(json);

        Assert.Contains(where + ": ", error, StringComparison.Ordinal);
        Assert.Contains(words, error, StringComparison.Ordinal);
    }

    [Fact]
    public void Credentials_without_inspection_configured_are_a_load_error()
    {
        var error = LoadError(Json().Replace("\"inspect\": [\"api.example\", \"*.svc.example\"],", string.Empty, StringComparison.Ordinal), inspection: false);

        Assert.Contains("$.credentials: needs HTTPS inspection", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("zq7xk\nw9vkp")]
    [InlineData("qzv7m\u0001wxk9r")]
    [InlineData("ünïcode")]
    [InlineData("\n\n")]
    public void A_secret_a_header_cannot_carry_is_refused_without_saying_what_it_is(string secret)
    {
        File.WriteAllText(_dir.File("github.secret"), secret);

        var error = LoadError(Json());

        Assert.Contains("$.credentials[0].secretFile: ", error, StringComparison.Ordinal);
        foreach (var part in secret.Split('\n', '\u0001'))
        {
            if (part.Length > 2)
            {
                Assert.DoesNotContain(part, error, StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public void A_reload_reads_the_secret_again_and_keeps_the_injection_buckets()
    {
        var gate = Gate(Json(github: ", \"rateLimits\": { \"requestsPerMinute\": 1, \"burst\": 1 }"), out var engine);
        Assert.Equal("Bearer " + Secret, Encoding.ASCII.GetString(engine.Current.Credentials[0].HeaderValue));
        Assert.NotNull(Decide(gate, "Inspected", "api.example", Inner("api.example", $"Authorization: Bearer {Placeholder}\r\n")).Credential);

        File.WriteAllText(_dir.File("github.secret"), "rotated-secret\r\n");
        Assert.True(engine.Reload().Ok);

        Assert.Equal("Bearer rotated-secret", Encoding.ASCII.GetString(engine.Current.Credentials[0].HeaderValue));
        var limited = Decide(gate, "Inspected", "api.example", Inner("api.example", $"Authorization: Bearer {Placeholder}\r\n"));
        Assert.Equal(Reasons.CredentialRateLimit, limited.Result.Reason);
    }

    public static TheoryData<string, string, string, string, string, string?> Order() => new()
    {
        // front end, host, head, agent → decision, reason, credential
        { "Inspected", "api.example", Inner("api.example", $"Authorization: Bearer {Placeholder}\r\n"), "bot", $"ALLOW {Reasons.Allowed}", "github-api" },
        { "Inspected", "api.example", Inner("api.example", $"authorization:   Bearer {Placeholder}  \r\n"), "bot", $"ALLOW {Reasons.Allowed}", "github-api" },
        { "Inspected", "api.example", Inner("api.example", target: $"/search?token={Placeholder}"), "bot", $"ALLOW {Reasons.Allowed}", "github-api" },
        // Required: only for the listed agents, only inner and plain requests, never the CONNECT.
        { "Inspected", "api.example", Inner("api.example"), "bot", $"POLICY_VIOLATION {Reasons.CredentialRequired}", "github-api" },
        { "Http", "api.example", Inner("api.example"), "bot", $"POLICY_VIOLATION {Reasons.CredentialRequired}", "github-api" },
        { "Inspected", "api.example", Inner("api.example"), "reader", $"ALLOW {Reasons.Allowed}", null },
        { "Connect", "api.example", "CONNECT api.example:443 HTTP/1.1\r\nHost: api.example:443\r\n\r\n", "bot", $"ALLOW {Reasons.Allowed}", null },
        { "Socks", "api.example", string.Empty, "bot", $"ALLOW {Reasons.Allowed}", null },
        // Misdirected: another host, another agent, plain HTTP, the CONNECT head: whatever the require says.
        { "Inspected", "a.svc.example", Inner("a.svc.example", $"X-Forward: {Placeholder}\r\n"), "bot", $"POLICY_VIOLATION {Reasons.CredentialMisdirected}", "github-api" },
        { "Inspected", "api.example", Inner("api.example", $"Authorization: Bearer {Placeholder}\r\n"), "reader", $"POLICY_VIOLATION {Reasons.CredentialMisdirected}", "github-api" },
        { "Http", "api.example", Inner("api.example", $"Authorization: Bearer {Placeholder}\r\n"), "bot", $"POLICY_VIOLATION {Reasons.CredentialMisdirected}", "github-api" },
        { "Http", "plain.example", Inner("plain.example", target: $"http://plain.example/?q={Placeholder}"), "bot", $"POLICY_VIOLATION {Reasons.CredentialMisdirected}", "github-api" },
        { "Connect", "api.example", $"CONNECT api.example:443 HTTP/1.1\r\nHost: api.example:443\r\nX-Token: {Placeholder}\r\n\r\n", "bot", $"POLICY_VIOLATION {Reasons.CredentialMisdirected}", "github-api" },
        // Misdirected comes before required: the search placeholder on api.example, without github's.
        { "Inspected", "api.example", Inner("api.example", $"X-Api-Key: {OtherPlaceholder}\r\n"), "bot", $"POLICY_VIOLATION {Reasons.CredentialMisdirected}", "search" },
        // A second credential, for both agents, not required.
        { "Inspected", "b.svc.example", Inner("b.svc.example", $"X-Api-Key: {OtherPlaceholder}\r\n"), "reader", $"ALLOW {Reasons.Allowed}", "search" },
        { "Inspected", "b.svc.example", Inner("b.svc.example"), "reader", $"ALLOW {Reasons.Allowed}", null },
        // A refusal of the §4 walk comes first.
        { "Inspected", "elsewhere.example", Inner("elsewhere.example", $"Authorization: Bearer {Placeholder}\r\n"), "bot", $"DENY {Reasons.DefaultDeny}", null },
    };

    [Theory]
    [MemberData(nameof(Order))]
    public void Misdirected_then_required_then_injection(string way, string host, string head, string agent, string expected, string? credential)
    {
        var gate = Gate(Json(github: ", \"require\": true"), out _);

        var decision = Decide(gate, way, host, head, agent);

        Assert.Equal(expected, $"{DecisionNames.Name(decision.Result.Decision)} {decision.Result.Reason}");
        Assert.Equal(credential, decision.Result.Credential?.Name);
        // Only an allowed request injects; a refused one names the credential for the record and injects nothing.
        Assert.Equal(decision.Result.IsAllow ? credential : null, decision.Credential?.Name);
        Assert.False(decision.HoldsTunnelSlot && !decision.Result.IsAllow);
    }

    [Fact]
    public void A_rule_refusal_comes_before_every_credential_step()
    {
        var gate = Gate(Json(github: ", \"require\": true", rules: "{ \"name\": \"no-admin\", \"action\": \"deny\", \"when\": [ { \"field\": \"path\", \"op\": \"starts_with\", \"value\": \"/admin\" } ] }"), out _);

        var decision = Decide(gate, "Inspected", "api.example", Inner("api.example"), path: "/admin");

        Assert.Equal(Reasons.RuleDeny, decision.Result.Reason);
        Assert.Null(decision.Result.Credential);
    }

    [Fact]
    public void Outside_the_credentials_window_a_placeholder_is_refused_but_a_misdirected_one_is_still_misdirected()
    {
        var hour = DateTime.UtcNow.Hour;
        var closed = $"{(hour + 2) % 24:00}:00";
        var gate = Gate(Json(github: $", \"timeRestrictions\": {{ \"timezone\": \"UTC\", \"ranges\": [ {{ \"start\": \"{closed}\", \"end\": \"{closed[..2]}:30\" }} ] }}"), out _);

        var refused = Decide(gate, "Inspected", "api.example", Inner("api.example", $"Authorization: Bearer {Placeholder}\r\n"));
        var misdirected = Decide(gate, "Http", "api.example", Inner("api.example", $"Authorization: Bearer {Placeholder}\r\n"));

        Assert.Equal($"TIME_RESTRICTED {Reasons.CredentialWindow} 403", $"{DecisionNames.Name(refused.Result.Decision)} {refused.Result.Reason} {refused.Result.Status}");
        Assert.NotNull(refused.Result.RetryAt);
        Assert.True(refused.Result.RetryAfterSeconds > 0);
        Assert.Null(refused.Credential);
        Assert.Equal(Reasons.CredentialMisdirected, misdirected.Result.Reason);
    }

    [Fact]
    public void Past_the_credentials_rate_a_placeholder_is_refused_with_Retry_After_and_requests_without_one_go_on()
    {
        var gate = Gate(Json(search: ", \"rateLimits\": { \"requestsPerHour\": 2, \"burst\": 2 }"), out _);
        var carrying = Inner("a.svc.example", $"X-Api-Key: {OtherPlaceholder}\r\n");

        Assert.NotNull(Decide(gate, "Inspected", "a.svc.example", carrying).Credential);
        Assert.NotNull(Decide(gate, "Inspected", "a.svc.example", carrying).Credential);
        var limited = Decide(gate, "Inspected", "a.svc.example", carrying);
        var otherAgent = Decide(gate, "Inspected", "a.svc.example", carrying, agent: "reader");
        var without = Decide(gate, "Inspected", "a.svc.example", Inner("a.svc.example"));

        Assert.Equal($"RATE_LIMITED {Reasons.CredentialRateLimit} 429", $"{DecisionNames.Name(limited.Result.Decision)} {limited.Result.Reason} {limited.Result.Status}");
        Assert.True(limited.Result.RetryAfterSeconds > 0);
        Assert.Null(limited.Credential);
        Assert.NotNull(otherAgent.Credential); // per agent
        Assert.True(without.Result.IsAllow);
    }

    [Fact]
    public void In_observe_mode_a_refused_placeholder_is_let_through_without_injection()
    {
        var gate = Gate(Json(mode: "observe"), out _);

        var decision = Decide(gate, "Http", "api.example", Inner("api.example", $"Authorization: Bearer {Placeholder}\r\n"));

        Assert.True(decision.Allowed);
        Assert.Equal(Reasons.CredentialMisdirected, decision.Result.Reason);
        Assert.Null(decision.Credential);
    }

    [Fact]
    public void The_credential_steps_allocate_nothing()
    {
        var policy = Compile(Json(github: ", \"require\": true, \"rateLimits\": { \"requestsPerMinute\": 1000000, \"burst\": 1000000 }"));
        var bot = policy.AgentsById["bot"];
        var carrying = Encoding.ASCII.GetBytes(Inner("api.example", $"Authorization: Bearer {Placeholder}\r\n"));
        var misdirected = Encoding.ASCII.GetBytes(Inner("a.svc.example", $"Authorization: Bearer {Placeholder}\r\n"));
        var allow = DecisionResult.Allow(Reasons.Allowed, "p");
        var now = DateTimeOffset.UtcNow;
        var sum = 0;

        var allocated = Allocations.Least(() =>
        {
            sum += policy.ApplyCredentials(bot, "api.example"u8, 443, carrying, inspected: true, tunnel: false, now, 1, allow).Credential is null ? 0 : 1;
            sum += policy.ApplyCredentials(bot, "a.svc.example"u8, 443, misdirected, inspected: true, tunnel: false, now, 1, allow).Status;
            sum += policy.ApplyCredentials(bot, "api.example"u8, 443, default, inspected: true, tunnel: false, now, 1, allow).Status;
        });

        Assert.Equal(0, allocated);
        Assert.True(sum > 0);
    }
}
