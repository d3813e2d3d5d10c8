using System.Text.Json;
using ChronoGuard.Audit;
using ChronoGuard.Sidecar.Cli;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Cli;

/// <summary>
/// <c>export</c>'s filters (SPEC §3) over a log written by the real audit writer, whose clock the test
/// sets so that records sit hours and minutes before now: each filter keeps exactly the records a plain
/// reading of it selects, comma lists match any of their values, filters combine, and a value that can
/// never match is a usage error naming it (exit 2, nothing on stdout) instead of an empty export.
/// </summary>
public sealed class ExportFilterTests : IDisposable
{
    private static readonly (string Host, string Decision, string Reason, TimeSpan Age)[] Written =
    [
        ("example.com", "ALLOW", "allowed", TimeSpan.FromHours(3)),
        ("api.example.com", "DENY", "default_deny", TimeSpan.FromHours(2)),
        ("a.b.EXAMPLE.com", "BLOCK", "private_destination", TimeSpan.FromMinutes(90)),
        ("example.org", "BLOCK", "domain_blocked", TimeSpan.FromMinutes(50)),
        ("notexample.com", "RATE_LIMITED", "rate_limit", TimeSpan.FromMinutes(30)),
        ("api.example.com.", "DENY", "default_deny", TimeSpan.FromMinutes(20)),
        ("pypi.org", "ALLOW", "allowed", TimeSpan.FromMinutes(5)),
        ("files.pythonhosted.org", "POLICY_VIOLATION", "rule_deny", TimeSpan.FromMinutes(2)),
    ];

    private readonly TempDir _dir = new();
    private readonly DateTimeOffset _now = DateTimeOffset.UtcNow;

    public ExportFilterTests()
    {
        var clock = new ManualTimeProvider(_now - TimeSpan.FromHours(4));
        using var writer = AuditWriter.Open(new AuditOptions { Directory = _dir.File("audit") }, clock);
        SystemRecords.Append(writer, "start");
        foreach (var (host, decision, reason, age) in Written)
        {
            clock.Set(_now - age);
            var r = default(AuditRecord);
            r.Kind = AuditKind.Decision;
            r.Port = 443;
            r.Status = decision == "ALLOW" ? 200 : 403;
            r.Set(AuditText.Agent, "bot");
            r.Set(AuditText.Method, "CONNECT");
            r.Set(AuditText.Host, host);
            r.Set(AuditText.Decision, decision);
            r.Set(AuditText.Reason, reason);
            writer.Append(ref r);
        }
    }

    public void Dispose() => _dir.Dispose();

    private async Task<(int Code, List<string> Hosts, string Stderr)> ExportAsync(params string[] filters)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = await CommandLine.RunAsync(["export", "--audit-dir", _dir.File("audit"), .. filters], stdout, stderr);
        var hosts = stdout.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonDocument.Parse(l).RootElement)
            .Select(e => e.GetProperty("kind").GetString() == "system" ? "(system)" : e.GetProperty("host").GetString()!)
            .ToList();
        return (code, hosts, stderr.ToString());
    }

    private static List<string> Where(Func<(string Host, string Decision, string Reason, TimeSpan Age), bool> keep) =>
        Written.Where(keep).Select(w => w.Host).ToList();

    [Theory]
    [InlineData("DENY,BLOCK")]
    [InlineData("deny,Block")]
    [InlineData("DENY, BLOCK")]
    public async Task Decision_takes_a_comma_list_in_any_case(string list)
    {
        var (code, hosts, stderr) = await ExportAsync("--decision", list);
        Assert.Equal((0, string.Empty), (code, stderr));
        Assert.Equal(Where(w => w.Decision is "DENY" or "BLOCK"), hosts);
    }

    [Fact]
    public async Task Not_decision_keeps_everything_else_including_system_records()
    {
        var (code, hosts, _) = await ExportAsync("--not-decision", "ALLOW");
        Assert.Equal(0, code);
        Assert.Equal(["(system)", .. Where(w => w.Decision != "ALLOW")], hosts);

        var (_, both, _) = await ExportAsync("--decision", "DENY,BLOCK,ALLOW", "--not-decision", "ALLOW");
        Assert.Equal(Where(w => w.Decision is "DENY" or "BLOCK"), both);
    }

    [Fact]
    public async Task Reason_takes_a_comma_list()
    {
        var (code, hosts, _) = await ExportAsync("--reason", "default_deny,private_destination");
        Assert.Equal(0, code);
        Assert.Equal(Where(w => w.Reason is "default_deny" or "private_destination"), hosts);
    }

    [Theory]
    [InlineData("*.example.com", new[] { "api.example.com", "a.b.EXAMPLE.com", "api.example.com." })]
    [InlineData("example.com", new[] { "example.com" })]
    [InlineData("example.com,*.example.com", new[] { "example.com", "api.example.com", "a.b.EXAMPLE.com", "api.example.com." })]
    [InlineData("*example.com", new[] { "example.com", "api.example.com", "a.b.EXAMPLE.com", "notexample.com", "api.example.com." })]
    [InlineData("api.*", new[] { "api.example.com", "api.example.com." })]
    [InlineData("*.org", new[] { "example.org", "pypi.org", "files.pythonhosted.org" })]
    [InlineData("API.EXAMPLE.COM", new[] { "api.example.com", "api.example.com." })]
    [InlineData("nothing.here", new string[0])]
    public async Task Host_is_a_case_insensitive_glob_and_a_wildcard_label_is_not_the_bare_domain(string glob, string[] expected)
    {
        var (code, hosts, _) = await ExportAsync("--host", glob);
        Assert.Equal(0, code);
        Assert.Equal(expected, hosts);
    }

    [Theory]
    [InlineData("1h", null, 60)]
    [InlineData("3600s", null, 60)]
    [InlineData("150m", "10m", 150)]
    [InlineData("1d", "40m", 24 * 60)]
    [InlineData("7d", null, 7 * 24 * 60)]
    public async Task Since_and_until_take_relative_times(string since, string? until, int sinceMinutes)
    {
        var (code, hosts, _) = await ExportAsync(until is null ? ["--since", since] : ["--since", since, "--until", until]);
        Assert.Equal(0, code);
        var untilAge = until is null ? TimeSpan.Zero : TimeSpan.FromMinutes(int.Parse(until[..^1], System.Globalization.CultureInfo.InvariantCulture));
        var expected = Written.Where(w => w.Age <= TimeSpan.FromMinutes(sinceMinutes) && w.Age > untilAge).Select(w => w.Host).ToList();
        if (sinceMinutes >= 4 * 60)
        {
            expected.Insert(0, "(system)");
        }

        Assert.Equal(expected, hosts);
    }

    [Fact]
    public async Task Absolute_times_still_work_and_filters_combine()
    {
        var since = (_now - TimeSpan.FromMinutes(100)).ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture);
        var (code, hosts, _) = await ExportAsync("--since", since, "--decision", "DENY,BLOCK", "--host", "*.example.com");
        Assert.Equal(0, code);
        Assert.Equal(["a.b.EXAMPLE.com", "api.example.com."], hosts);
    }

    [Theory]
    [InlineData("--decision", "BOGUS", "export: --decision: 'BOGUS' is not a decision; decisions are ALLOW, DENY, BLOCK, POLICY_VIOLATION, TIME_RESTRICTED, RATE_LIMITED")]
    [InlineData("--decision", "DENY,BLOK", "export: --decision: 'BLOK' is not a decision (did you mean BLOCK?); decisions are ALLOW, DENY, BLOCK, POLICY_VIOLATION, TIME_RESTRICTED, RATE_LIMITED")]
    [InlineData("--decision", "DENIED", "export: --decision: 'DENIED' is not a decision; decisions are ALLOW, DENY, BLOCK, POLICY_VIOLATION, TIME_RESTRICTED, RATE_LIMITED")]
    [InlineData("--not-decision", "allowed", "export: --not-decision: 'allowed' is not a decision (did you mean ALLOW?); decisions are ALLOW, DENY, BLOCK, POLICY_VIOLATION, TIME_RESTRICTED, RATE_LIMITED")]
    [InlineData("--decision", "DENY,", "export: --decision 'DENY,' has an empty item (a comma list such as A,B)")]
    [InlineData("--decision", "", "export: --decision '' has an empty item (a comma list such as A,B)")]
    [InlineData("--reason", "a,,b", "export: --reason 'a,,b' has an empty item (a comma list such as A,B)")]
    [InlineData("--host", ",", "export: --host ',' has an empty item (a comma list such as A,B)")]
    [InlineData("--since", "5x", "export: --since '5x' is not a time (ISO-8601 such as 2026-12-05T10:00:00Z, a date, or relative: 90s, 10m, 1h, 7d)")]
    [InlineData("--until", "-1h", "export: --until '-1h' is not a time (ISO-8601 such as 2026-12-05T10:00:00Z, a date, or relative: 90s, 10m, 1h, 7d)")]
    [InlineData("--since", "h", "export: --since 'h' is not a time (ISO-8601 such as 2026-12-05T10:00:00Z, a date, or relative: 90s, 10m, 1h, 7d)")]
    public async Task A_value_that_can_never_match_is_a_usage_error_naming_it(string option, string value, string expected)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = await CommandLine.RunAsync(["export", "--audit-dir", _dir.File("audit"), option, value], stdout, stderr);
        Assert.Equal(2, code);
        Assert.Equal(string.Empty, stdout.ToString());
        Assert.Equal(expected + "\n", stderr.ToString());
    }

    [Fact]
    public async Task Csv_export_applies_the_same_filters()
    {
        var stdout = new StringWriter();
        Assert.Equal(0, await CommandLine.RunAsync(["export", "--audit-dir", _dir.File("audit"), "--format", "csv", "--reason", "default_deny", "--since", "1h"], stdout, TextWriter.Null));
        var lines = stdout.ToString().TrimEnd('\n').Split('\n');
        Assert.StartsWith("seq,ts,", lines[0], StringComparison.Ordinal);
        Assert.Single(lines[1..]);
        Assert.Contains(",api.example.com.,", lines[1], StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("*.example.com", "a.example.com", true)]
    [InlineData("*.example.com", "example.com", false)]
    [InlineData("*.example.com", "a.example.com.evil", false)]
    [InlineData("a*b*c", "aXXbYYc", true)]
    [InlineData("a*b*c", "aXXbYY", false)]
    [InlineData("*", "", true)]
    [InlineData("**", "x", true)]
    [InlineData("a", "", false)]
    [InlineData("", "", true)]
    [InlineData("*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false)]
    public void Glob_matches_star_as_any_run_of_characters(string pattern, string text, bool matches) =>
        Assert.Equal(matches, ExportFilter.Glob(pattern, text));
}
