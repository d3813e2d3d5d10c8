using System.Diagnostics;
using System.Net;
using System.Text;
using ChronoGuard.Policy;
using ChronoGuard.Proxy;
using ChronoGuard.Sidecar.Cli;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Policy;

/// <summary>
/// SPEC §9 presets: each built-in list parses, is canonical, names its sources and compiles into the
/// policy so that every host it lists is allowed (and a neighbour it does not list is not); an unknown
/// name is one load error; a block narrows a preset; explain names the preset; the real proxy lets a
/// preset host through.
/// </summary>
public sealed class PresetTests
{
    private static readonly string PresetDir = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../../src/ChronoGuard/Policy/Presets"));

    private static readonly string[] RequiredNames = ["npm", "pypi", "nuget", "crates-io", "go-modules", "github", "apt", "docker-hub", "huggingface", "openai", "anthropic"];

    public static TheoryData<string> Required() => new(RequiredNames);

    [Theory]
    [MemberData(nameof(Required))]
    public void Each_preset_parses_names_its_sources_and_allows_every_host_it_lists_and_no_neighbour(string name)
    {
        Assert.True(PolicyPresets.TryGet(name, out var preset), $"no preset {name}");
        Assert.NotEmpty(preset.Domains);
        Assert.True(preset.Version >= 1);
        Assert.All(preset.Sources, s => Assert.StartsWith("https://", s, StringComparison.Ordinal));

        // The file as written is canonical: what explain prints is what the file says.
        using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(Path.Combine(PresetDir, name + ".json")), new() { CommentHandling = System.Text.Json.JsonCommentHandling.Skip });
        Assert.Equal(json.RootElement.GetProperty("domains").EnumerateArray().Select(d => d.GetString()!), preset.Domains);

        var policy = PolicyFixture.Compile($$"""
            { "version": 1, "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
              "policies": [ { "name": "p", "presets": ["{{name}}"] } ] }
            """);
        var agent = policy.AgentsById["bot"];
        foreach (var pattern in preset.Domains)
        {
            DomainNames.SplitPorts(pattern, out var host, out var lo, out _);
            var port = lo is > 0 and <= 65535 ? lo : 443;
            var concrete = host.StartsWith("*.", StringComparison.Ordinal) ? "x1." + host[2..] : host;
            Assert.True(Decide(policy, agent, concrete, port).IsAllow, $"{name}: {concrete}:{port}");
            if (!host.StartsWith("*.", StringComparison.Ordinal))
            {
                // Neighbours of an exact name: the match is on whole labels, anchored at the end.
                Assert.False(Decide(policy, agent, "chronoguard" + host, port).IsAllow, "chronoguard" + host);
                Assert.False(Decide(policy, agent, host + ".invalid", port).IsAllow, host + ".invalid");
            }
        }

        // A pattern with a port admits only that port beyond allowedPorts.
        foreach (var pattern in preset.Domains.Where(p => p.Contains(':', StringComparison.Ordinal)))
        {
            DomainNames.SplitPorts(pattern, out var host, out _, out var hi);
            Assert.Equal(Decision.Block, Decide(policy, agent, host, hi + 1).Decision);
        }
    }

    [Fact]
    public void Every_preset_file_in_the_repository_is_embedded_and_loads()
    {
        var files = Directory.GetFiles(PresetDir, "*.json").Select(f => Path.GetFileNameWithoutExtension(f)).Order(StringComparer.Ordinal);
        Assert.Equal(files, PolicyPresets.All.Keys.Order(StringComparer.Ordinal));
        Assert.Superset(PolicyPresets.All.Keys.ToHashSet(), RequiredNames.ToHashSet());
    }

    [Fact]
    public void The_presets_page_lists_each_preset_with_its_version_and_patterns()
    {
        var page = File.ReadAllText(Path.Combine(PresetDir, "../../../../docs/presets.md"));
        foreach (var preset in PolicyPresets.All.Values)
        {
            Assert.Contains($"| `{preset.Name}` | {preset.Version} | {preset.Description} | {string.Join(", ", preset.Domains.Select(d => $"`{d}`"))} | {string.Join("<br>", preset.Sources)} |", page, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void An_unknown_preset_is_one_load_error_naming_it_and_its_path()
    {
        var error = PolicyFixture.LoadError("""
            { "version": 1, "policies": [ { "name": "p", "presets": ["npm", "npmjs"] } ] }
            """);
        Assert.EndsWith($": $.policies[0].presets[1]: unknown preset \"npmjs\" (known: {PolicyPresets.Names})", error, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error);
        Assert.Contains("$.policies[0].presets: must be an array", PolicyFixture.LoadError("""{ "version": 1, "policies": [ { "name": "p", "presets": "npm" } ] }"""), StringComparison.Ordinal);
    }

    [Fact]
    public void A_block_narrows_a_preset_and_inherited_presets_apply()
    {
        var policy = PolicyFixture.Compile("""
            { "version": 1, "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["team"] } ],
              "policies": [ { "name": "base", "presets": ["github"] },
                            { "name": "team", "extends": ["base"], "presets": ["npm"], "blockedDomains": ["gist.github.com"] } ] }
            """);
        var agent = policy.AgentsById["bot"];
        Assert.True(Decide(policy, agent, "api.github.com", 443).IsAllow);
        Assert.True(Decide(policy, agent, "registry.npmjs.org", 443).IsAllow);
        Assert.True(Decide(policy, agent, "github.com", 22).IsAllow);
        Assert.Equal(Decision.Block, Decide(policy, agent, "gist.github.com", 443).Decision);
        Assert.Equal(Decision.Deny, Decide(policy, agent, "pypi.org", 443).Decision);
    }

    [Fact]
    public void Explain_names_the_preset_the_match_came_from_and_the_policy_that_named_it()
    {
        using var dir = new TempDir();
        var file = dir.File("p.json");
        File.WriteAllText(file, $$"""
            { "version": 1, "agents": [ { "id": "bot", "tokenSha256": "{{PolicyFixture.TokenSha}}", "policies": ["team"] } ],
              "policies": [ { "name": "base", "presets": ["npm", "github"] },
                            { "name": "team", "extends": ["base"], "allowedDomains": ["api.example.org"] } ] }
            """);
        var check = new StringWriter();
        Assert.Equal(0, PolicyCommand.Run(["check", file], check, TextWriter.Null));
        Assert.Contains($"presets: policy base: github v{PolicyPresets.All["github"].Version} ({PolicyPresets.All["github"].Domains.Length} patterns), npm v{PolicyPresets.All["npm"].Version} (1 pattern)", check.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("policy team:", check.ToString(), StringComparison.Ordinal);

        var npm = new StringWriter();
        Assert.Equal(0, PolicyCommand.Run(["explain", file, "--target", "registry.npmjs.org:443"], npm, TextWriter.Null));
        Assert.Contains("domain: matches registry.npmjs.org (preset npm)", npm.ToString(), StringComparison.Ordinal);
        Assert.Contains("in the allowed list: registry.npmjs.org (preset npm of policy base)", npm.ToString(), StringComparison.Ordinal);

        var ssh = new StringWriter();
        Assert.Equal(0, PolicyCommand.Run(["explain", file, "--target", "github.com:22"], ssh, TextWriter.Null));
        Assert.Contains("admitted by the allowed pattern github.com:22 (preset github)", ssh.ToString(), StringComparison.Ordinal);

        // A pattern written by hand is not credited to a preset.
        var own = new StringWriter();
        Assert.Equal(0, PolicyCommand.Run(["explain", file, "--target", "api.example.org:443"], own, TextWriter.Null));
        Assert.Contains("in the allowed list: api.example.org", own.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("preset", own.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_preset_host_is_allowed_through_the_real_proxy_and_an_unlisted_one_is_not()
    {
        await using var origin = await KestrelOrigin.StartAsync();
        using var policy = new PolicyEngines($$"""
            { "version": 1,
              "network": { "allowedCidrs": ["127.0.0.1/32"], "allowedPorts": [{{origin.Port}}], "requireSniMatch": false },
              "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
              "policies": [ { "name": "p", "presets": ["npm"] } ] }
            """);
        var resolver = new MapResolver { ["registry.npmjs.org"] = IPAddress.Loopback, ["registry.yarnpkg.com"] = IPAddress.Loopback };
        await using var proxy = TestProxy.Start(gate: new PolicyGate(policy.Engine, TimeProvider.System), resolver: resolver);
        using var client = await RawClient.ConnectAsync(proxy.EndPoint);
        await client.SendAsync($"GET http://registry.npmjs.org:{origin.Port}/hello HTTP/1.1\r\nHost: registry.npmjs.org:{origin.Port}\r\n{PolicyEngines.Credentials()}\r\n");
        Assert.Equal(200, (await client.ReadHeadAsync()).Status);
        Assert.NotEmpty(origin.ConnectionIds);

        using var other = await RawClient.ConnectAsync(proxy.EndPoint);
        await other.SendAsync($"CONNECT registry.yarnpkg.com:{origin.Port} HTTP/1.1\r\nHost: registry.yarnpkg.com:{origin.Port}\r\n{PolicyEngines.Credentials()}\r\n");
        var refused = await other.ReadHeadAsync();
        Assert.Equal(403, refused.Status);
        Assert.Equal("DENY", refused["X-ChronoGuard-Decision"]);
    }

    private static DecisionResult Decide(CompiledPolicy policy, AgentPlan agent, string host, int port) =>
        policy.Decide(agent, new RequestFacts(Encoding.ASCII.GetBytes(host), port, "CONNECT"u8, default, default, null, isConnect: true), DateTimeOffset.UtcNow, Stopwatch.GetTimestamp());
}
