using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using ChronoGuard.Audit;
using ChronoGuard.Proxy;
using ChronoGuard.Sidecar.Cli;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Cli;

/// <summary>
/// <c>policy explain --resolve</c> (SPEC §3, §4): the name is resolved and every address judged by the
/// network guard as the proxy judges it (refused when none passes, else only the passing ones are
/// dialed), so explain no longer says ALLOW for a host the sidecar blocks at its address; without
/// <c>--resolve</c> an ALLOW says its addresses were not judged. Names are answered by a fake DNS server
/// on loopback (<c>--resolver</c>) or by /etc/hosts (<c>localhost</c>), never by the host's resolver;
/// the answers are judged, and only loopback is ever dialed (by the proxy of the cross-check).
/// </summary>
public sealed partial class ExplainResolveTests : IAsyncLifetime, IDisposable
{
    private static readonly string[] Zone =
    [
        "public.test|A|60|93.184.216.34",
        "lan.test|A|60|10.0.0.7",
        "mixed.test|A|60|10.0.0.7",
        "mixed.test|A|60|93.184.216.34",
        "mixed.test|AAAA|60|fd00::1",
        "meta.test|A|60|169.254.169.254",
        "alias.test|CNAME|60|lan.test.",
        "blocked.test|A|60|93.184.216.34",
        "v6.test|AAAA|60|2001:4860:4860::8888",
        "two.test|A|60|10.0.0.7",
        "two.test|A|60|127.0.0.1",
        .. Enumerable.Range(1, 80).Select(i => $"big.test|A|60|10.0.1.{i}"),
        "big.test|A|60|93.184.216.34",
    ];

    private readonly TempDir _dir = new();
    private FakeResolver _dns = null!;

    public async Task InitializeAsync() => _dns = await FakeResolver.StartAsync(Zone);

    public async Task DisposeAsync() => await _dns.DisposeAsync();

    public void Dispose() => _dir.Dispose();

    private static string PolicyJson(string cidrs = "", int port = 443) => $$"""
        { "version": 1, "defaultAction": "deny",
          "network": { "allowedCidrs": [{{cidrs}}], "allowedPorts": [{{port}}], "requireSniMatch": false },
          "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
          "policies": [ { "name": "p", "allowedDomains": ["*.test", "localhost", "93.184.216.34"], "blockedDomains": ["blocked.test"] } ] }
        """;

    private (int Code, string Out, string Err) Explain(string policy, params string[] args)
    {
        var file = _dir.File($"policy-{Guid.NewGuid():N}.json");
        File.WriteAllText(file, policy.Replace("$TOKEN", ChronoGuard.Tests.Policy.PolicyFixture.TokenSha, StringComparison.Ordinal));
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = PolicyCommand.Run(["explain", file, "--agent", "bot", .. args], stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString().TrimEnd());
    }

    private string Resolver => $"127.0.0.1:{_dns.EndPoint.Port}";

    [Theory]
    [InlineData("public.test", "", 0, "decision: ALLOW (200 allowed, policy p); dials 93.184.216.34", "network guard: every address passes; the proxy dials 93.184.216.34 first")]
    [InlineData("lan.test", "", 1, "decision: BLOCK (403 private_destination); address 10.0.0.7", "network guard: 10.0.0.7 refused (private_destination)")]
    [InlineData("lan.test", "\"10.0.0.0/8\"", 0, "decision: ALLOW (200 allowed, policy p); dials 10.0.0.7", "network guard: 10.0.0.7 may be dialed")]
    [InlineData("mixed.test", "", 0, "decision: ALLOW (200 allowed, policy p); dials 93.184.216.34", "network guard: 1 of 3 addresses pass; the proxy dials only those (93.184.216.34 first), never ")]
    [InlineData("meta.test", "\"169.254.0.0/16\"", 0, "decision: ALLOW (200 allowed, policy p); dials 169.254.169.254", "resolve: meta.test -> 169.254.169.254")]
    [InlineData("meta.test", "", 1, "decision: BLOCK (403 metadata_destination); address 169.254.169.254", "network guard: no address of meta.test passes: the request is refused, and its record names 169.254.169.254")]
    [InlineData("alias.test", "", 1, "decision: BLOCK (403 private_destination); address 10.0.0.7", "resolve: alias.test -> 10.0.0.7")]
    [InlineData("v6.test", "", 0, "decision: ALLOW (200 allowed, policy p); dials 2001:4860:4860::8888", "resolve: v6.test -> 2001:4860:4860::8888")]
    [InlineData("nx.test", "", 1, "decision: ALLOW (502 upstream_unresolved, policy p)", "resolve: nx.test has no address (the DNS server 127.0.0.1:")]
    [InlineData("big.test", "", 0, "decision: ALLOW (200 allowed, policy p); dials 93.184.216.34", "network guard: 1 of 81 addresses pass")]
    [InlineData("blocked.test", "", 1, "decision: BLOCK (403 domain_blocked, policy p)", "resolve: blocked.test not resolved: the proxy resolves a name only for a request that could be allowed")]
    [InlineData("10.0.0.7", "", 1, "decision: BLOCK (403 private_destination)", "network: 10.0.0.7 refused (private_destination)")]
    [InlineData("93.184.216.34", "", 0, "decision: ALLOW (200 allowed, policy p)", "domain: matches")]
    public void Explain_resolves_the_name_and_judges_every_address_as_the_proxy_does(string host, string cidrs, int code, string decision, string step)
    {
        var (exit, output, error) = Explain(PolicyJson(cidrs), "--target", $"{host}:443", "--resolver", Resolver);
        Assert.True(code == exit, output + error);
        Assert.Equal(decision, output.TrimEnd().Split('\n')[^1]);
        Assert.Contains(step, output, StringComparison.Ordinal);
        Assert.Equal(string.Empty, error);
    }

    [Fact]
    public async Task A_truncated_answer_is_asked_again_over_tcp_and_a_refused_request_asks_nothing()
    {
        Assert.Equal(1, Explain(PolicyJson(), "--target", "blocked.test:443", "--resolver", Resolver).Code);
        Assert.Equal(0, Explain(PolicyJson(), "--target", "big.test:443", "--resolver", Resolver).Code);

        // The server answers in order, so once big.test was asked, a question about blocked.test would show.
        await _dns.WaitForAsync("tcp big.test A");
        Assert.Contains("udp big.test A", _dns.Questions);
        Assert.DoesNotContain(_dns.Questions, q => q.Contains("blocked.test", StringComparison.Ordinal));
    }

    [Fact]
    public void Without_resolve_an_allow_says_plainly_that_the_addresses_were_not_judged()
    {
        var (code, output, _) = Explain(PolicyJson(), "--target", "lan.test:443");
        Assert.Equal(0, code);
        Assert.Contains("network guard: not judged: explain did not resolve lan.test; the proxy refuses the request if no address of it passes the guard (add --resolve to judge them)", output, StringComparison.Ordinal);
        Assert.Equal("decision: ALLOW (200 allowed, policy p); addresses not judged (no --resolve)", output.TrimEnd().Split('\n')[^1]);

        // An IP literal is judged inside the decision, with or without --resolve, and a refusal needs no note.
        Assert.Equal("decision: ALLOW (200 allowed, policy p)", Explain(PolicyJson(), "--target", "93.184.216.34:443").Out.TrimEnd().Split('\n')[^1]);
        Assert.Equal("decision: BLOCK (403 domain_blocked, policy p)", Explain(PolicyJson(), "--target", "blocked.test:443").Out.TrimEnd().Split('\n')[^1]);
    }

    [Fact]
    public void Resolve_uses_the_system_resolver_which_answers_localhost_from_etc_hosts()
    {
        var (code, output, error) = Explain(PolicyJson(), "--target", "localhost:443", "--resolve");
        Assert.True(code == 1, output + error);
        Assert.Contains("resolve: localhost -> 127.0.0.1", output, StringComparison.Ordinal);
        Assert.Contains("(the system resolver)", output, StringComparison.Ordinal);
        Assert.Matches(@"decision: BLOCK \(403 private_destination\); address (127\.0\.0\.1|::1)$", output.TrimEnd().Split('\n')[^1]);

        var allowed = Explain(PolicyJson("\"127.0.0.0/8\", \"::1/128\""), "--target", "localhost:443", "--resolve");
        Assert.Equal(0, allowed.Code);
        Assert.Matches(@"decision: ALLOW \(200 allowed, policy p\); dials ", allowed.Out.TrimEnd().Split('\n')[^1]);
    }

    [Theory]
    [InlineData("--resolver", "dns.example:53", "policy explain: --resolver 'dns.example:53' is not an IP:PORT (a DNS server's address, e.g. 10.96.0.10:53)")]
    [InlineData("--resolver", "0.0.0.0:53", "policy explain: --resolver '0.0.0.0:53' is not an IP:PORT (a DNS server's address, e.g. 10.96.0.10:53)")]
    [InlineData("--resolver", null, "policy explain: --resolver needs a value")]
    [InlineData("--resolv", null, "policy explain: unknown option '--resolv' (did you mean --resolve?)")]
    public void Resolver_usage_errors_are_one_line_and_exit_2(string option, string? value, string expected)
    {
        var (code, _, error) = Explain(PolicyJson(), value is null ? ["--target", "lan.test:443", option] : ["--target", "lan.test:443", option, value]);
        Assert.Equal((2, expected), (code, error));
    }

    /// <summary>
    /// Explain and the proxy on the same answers (the proxy resolving through the same fake server):
    /// the decision, reason and address explain prints are the record's decision, reason and dialedIp.
    /// The only address either may dial is 127.0.0.1, the origin; 10.0.0.7 is refused by both.
    /// </summary>
    [Theory]
    [InlineData("two.test", "ALLOW allowed 127.0.0.1 200")]
    [InlineData("lan.test", "BLOCK private_destination 10.0.0.7 403")]
    [InlineData("nx.test", "ALLOW upstream_unresolved - 502")]
    [InlineData("blocked.test", "BLOCK domain_blocked - 403")]
    public async Task Explain_says_what_the_proxy_records_for_the_same_answers(string host, string expected)
    {
        await using var origin = await KestrelOrigin.StartAsync();
        var policy = PolicyJson("\"127.0.0.1/32\"", origin.Port);
        var (_, output, _) = Explain(policy, "--target", $"{host}:{origin.Port}", "--resolver", Resolver);
        var m = DecisionLine().Match(output.TrimEnd().Split('\n')[^1]);
        Assert.True(m.Success, output);
        var explained = $"{m.Groups[1].Value} {m.Groups[3].Value} {(m.Groups[4].Success ? m.Groups[4].Value : "-")} {m.Groups[2].Value}";

        using var engine = new PolicyEngines(policy);
        var auditDir = _dir.File($"audit-{Guid.NewGuid():N}");
        using (var writer = AuditWriter.Open(new AuditOptions { Directory = auditDir }, TimeProvider.System))
        {
            await using var proxy = TestProxy.Start(gate: new PolicyGate(engine.Engine, TimeProvider.System, writer), resolver: new DnsServerResolver(_dns.EndPoint));
            using var client = await RawClient.ConnectAsync(proxy.EndPoint);
            await client.SendAsync($"GET http://{host}:{origin.Port}/hello HTTP/1.1\r\nHost: {host}:{origin.Port}\r\n{PolicyEngines.Credentials()}Connection: close\r\n\r\n");
            await client.ReadHeadAsync();
            client.Dispose();
            await proxy.Server.DrainAsync();
        }

        var record = Assert.Single(AuditReader.ReadDirectory(auditDir).Select(i => i.Entry!), e => e.Kind == AuditKind.Decision);
        Assert.Equal(expected, $"{record.Decision} {record.Reason} {(record.DialedIp.Length == 0 ? "-" : record.DialedIp)} {record.Status.ToString(CultureInfo.InvariantCulture)}");
        Assert.Equal(expected, explained);
    }

    /// <summary>The same through the real executable: <c>chronoguard policy explain ... --resolver</c>, and the help names both options.</summary>
    [Fact]
    public async Task The_executable_judges_the_resolved_addresses_and_its_help_names_the_options()
    {
        var file = _dir.File("policy.json");
        File.WriteAllText(file, PolicyJson().Replace("$TOKEN", ChronoGuard.Tests.Policy.PolicyFixture.TokenSha, StringComparison.Ordinal));
        var run = await SidecarRun.RunAsync(_dir.Path, ["policy", "explain", file, "--target", "mixed.test:443", "--resolver", Resolver]);
        Assert.True(run.ExitCode == 0, run.Stdout + run.Stderr);
        Assert.EndsWith("decision: ALLOW (200 allowed, policy p); dials 93.184.216.34", run.Stdout.TrimEnd(), StringComparison.Ordinal);

        var refused = await SidecarRun.RunAsync(_dir.Path, ["policy", "explain", file, "--target", "lan.test:443", "--resolver", Resolver]);
        Assert.Equal(1, refused.ExitCode);
        Assert.EndsWith("decision: BLOCK (403 private_destination); address 10.0.0.7", refused.Stdout.TrimEnd(), StringComparison.Ordinal);

        var help = await SidecarRun.RunAsync(_dir.Path, ["policy", "explain", "--help"]);
        Assert.Equal(0, help.ExitCode);
        Assert.Contains("[--resolve | --resolver IP:PORT]", help.Stdout, StringComparison.Ordinal);
        Assert.Contains("--resolve          resolve a host name with the system resolver", help.Stdout, StringComparison.Ordinal);
    }

    [GeneratedRegex(@"^decision: (\w+) \((\d+) (\w+)[^)]*\)(?:; (?:dials|address) ([^,\s]+))?")]
    private static partial Regex DecisionLine();
}
