using ChronoGuard.Sidecar.Cli;
using ChronoGuard.Tests.Audit;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Cli;

/// <summary>
/// SPEC §3's conventions through the real dispatcher: -h/--help on every command and subcommand (usage
/// on stdout, exit 0, wherever the flag stands), one grouping (audit verify|export|repair|keygen) with
/// the old top-level verify and export kept, stray words and unknown names refused by name (with the
/// nearest command for a typo), -V. Every command of the table is covered, so a new one without help fails.
/// </summary>
public sealed class CommandLineConventionTests
{
    private static async Task<(int Code, string Stdout, string Stderr)> RunAsync(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = await CommandLine.RunAsync(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    /// <summary>Every command and subcommand as typed, from the dispatcher's own table.</summary>
    public static TheoryData<string> Commands()
    {
        var data = new TheoryData<string>();
        foreach (var (command, subcommands) in CommandHelp.Commands)
        {
            data.Add(command);
            foreach (var sub in subcommands)
            {
                data.Add(command + " " + sub);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Commands))]
    public async Task Every_command_and_subcommand_takes_h_and_help_with_usage_on_stdout_and_exit_0(string command)
    {
        foreach (var flag in new[] { "--help", "-h" })
        {
            var (code, stdout, stderr) = await RunAsync([.. command.Split(' '), flag]);
            Assert.True(code == 0, $"{command} {flag}: exit {code}, stderr {stderr}");
            Assert.Equal(string.Empty, stderr);
            Assert.StartsWith("usage:", stdout, StringComparison.Ordinal);
            // The help names the command it is about (the aliases name their grouping or the short form).
            Assert.Contains("chronoguard " + command.Replace("audit verify", "verify", StringComparison.Ordinal).Replace("audit export", "export", StringComparison.Ordinal).Replace("version", "--version", StringComparison.Ordinal).Replace("help", string.Empty, StringComparison.Ordinal), stdout, StringComparison.Ordinal);
        }

        // "help COMMAND" is the same text.
        var (helpCode, helpOut, _) = await RunAsync(["help", .. command.Split(' ')]);
        Assert.Equal(0, helpCode);
        Assert.Equal((await RunAsync([.. command.Split(' '), "--help"])).Stdout, helpOut);
    }

    [Theory]
    [InlineData("run --policy p.json --help")]
    [InlineData("run --help --policy")]
    [InlineData("verify --audit-dir /nonexistent --help")]
    [InlineData("export --decision BOGUS -h")]
    [InlineData("policy check /nonexistent.json --help")]
    [InlineData("policy explain /nonexistent.json --target x:1 -h")]
    [InlineData("audit keygen --out /nonexistent/x --help")]
    [InlineData("healthcheck --stats 127.0.0.1:1 --help")]
    [InlineData("hash-token -h")]
    [InlineData("ca init --out /nonexistent/x -h")]
    public async Task Help_wins_wherever_it_stands_and_nothing_else_runs(string command)
    {
        var (code, stdout, stderr) = await RunAsync(command.Split(' '));
        Assert.Equal(0, code);
        Assert.Equal(string.Empty, stderr);
        Assert.StartsWith("usage:", stdout, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("run extra", "run: unexpected argument 'extra' (run takes only options; see chronoguard run --help)")]
    [InlineData("run --listen 127.0.0.1:0 extra", "run: unexpected argument 'extra' (run takes only options; see chronoguard run --help)")]
    [InlineData("run --polcy p.json", "run: unknown option '--polcy' (did you mean --policy?) (see chronoguard run --help)")]
    [InlineData("run --policy", "run: --policy needs a value")]
    [InlineData("policy chek FILE", "policy: unknown subcommand 'chek' (did you mean 'check'? see chronoguard policy --help)")]
    [InlineData("policy frobnicate", "policy: unknown subcommand 'frobnicate' (see chronoguard policy --help)")]
    [InlineData("policy check FILE extra", "policy check: unexpected argument 'extra' (check takes one FILE)")]
    [InlineData("policy check", "policy check: usage: chronoguard policy check FILE")]
    [InlineData("policy", "policy: usage: chronoguard policy check|explain ...")]
    [InlineData("policy explain FILE --target a.com:443 extra", "policy explain: unexpected argument 'extra'")]
    [InlineData("policy explain FILE --taget a.com:443", "policy explain: unknown option '--taget' (did you mean --target?)")]
    [InlineData("expot --audit-dir x", "chronoguard: unknown command 'expot' (did you mean 'export'? see chronoguard --help)")]
    [InlineData("polciy check FILE", "chronoguard: unknown command 'polciy' (did you mean 'policy'? see chronoguard --help)")]
    [InlineData("frobnicate", "chronoguard: unknown command 'frobnicate' (see chronoguard --help)")]
    [InlineData("audit verfy --audit-dir x", "audit: unknown subcommand 'verfy' (did you mean 'verify'? see chronoguard audit --help)")]
    [InlineData("audit", "audit: usage: chronoguard audit verify|export|repair|keygen ...")]
    [InlineData("verify --jsonl FILE extra", "verify: unexpected argument 'extra'")]
    [InlineData("verify --jsonl FILE --jsn", "verify: unknown option '--jsn' (did you mean --json?)")]
    [InlineData("audit verify --jsonl FILE extra", "verify: unexpected argument 'extra'")]
    [InlineData("export --audit-dir x extra", "export: unexpected argument 'extra'")]
    [InlineData("export --audit-dir x --decison DENY", "export: unknown option '--decison' (did you mean --decision?)")]
    [InlineData("audit keygen --out x extra", "audit keygen: unexpected argument 'extra' (usage: chronoguard audit keygen --out DIR)")]
    [InlineData("audit keygen extra", "audit keygen: unexpected argument 'extra' (usage: chronoguard audit keygen --out DIR)")]
    [InlineData("audit repair --audit-dir x extra", "audit repair: unexpected argument 'extra' (usage: chronoguard audit repair --audit-dir DIR)")]
    [InlineData("healthcheck extra", "healthcheck: unexpected argument 'extra' (usage: healthcheck [--stats HOST:PORT] [--path /readyz])")]
    [InlineData("-V extra", "version: unexpected argument 'extra'")]
    [InlineData("--version extra", "version: unexpected argument 'extra'")]
    [InlineData("help frobnicate", "help: unknown command 'frobnicate' (see chronoguard --help)")]
    public async Task Stray_words_unknown_names_and_typos_are_one_line_naming_them_and_exit_2(string command, string expected)
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("p.json"), """{ "version": 1 }""");
        var args = command.Split(' ').Select(a => a == "FILE" ? dir.File("p.json") : a).ToArray();

        var (code, stdout, stderr) = await RunAsync(args);

        Assert.Equal(string.Empty, stdout);
        Assert.Equal(expected, stderr.Replace(dir.File("p.json"), "FILE", StringComparison.Ordinal).TrimEnd('\n'));
        Assert.Equal(2, code);
    }

    [Theory]
    [InlineData("-V")]
    [InlineData("--version")]
    [InlineData("version")]
    public async Task Version_is_one_line_and_exit_0(string flag)
    {
        var (code, stdout, stderr) = await RunAsync(flag);
        Assert.Equal(0, code);
        Assert.Equal(string.Empty, stderr);
        Assert.Matches(@"^chronoguard \d+\.\d+\.\d+\S*\n$", stdout);
    }

    [Fact]
    public async Task Audit_verify_and_export_are_the_top_level_verify_and_export()
    {
        using var dir = new TempDir();
        var exported = AuditTestData.WriteAndExport(dir, 12);
        File.WriteAllLines(dir.File("export.jsonl"), exported);

        var grouped = await RunAsync("audit", "export", "--audit-dir", dir.File("audit"), "--decision", "BLOCK");
        var top = await RunAsync("export", "--audit-dir", dir.File("audit"), "--decision", "BLOCK");
        Assert.Equal((0, string.Empty), (grouped.Code, grouped.Stderr));
        Assert.Equal(top, grouped);
        Assert.Equal(exported.Where(l => l.Contains("\"decision\":\"BLOCK\"", StringComparison.Ordinal)), grouped.Stdout.TrimEnd('\n').Split('\n'));

        var verifyGrouped = await RunAsync("audit", "verify", "--jsonl", dir.File("export.jsonl"));
        var verifyTop = await RunAsync("verify", "--jsonl", dir.File("export.jsonl"));
        Assert.Equal(0, verifyGrouped.Code);
        Assert.StartsWith("valid: 12 records", verifyGrouped.Stdout, StringComparison.Ordinal);
        Assert.Equal(verifyTop, verifyGrouped);
    }

    [Fact]
    public async Task No_arguments_is_the_usage_on_stderr_and_exit_2()
    {
        var (code, stdout, stderr) = await RunAsync();
        Assert.Equal(2, code);
        Assert.Equal(string.Empty, stdout);
        Assert.StartsWith("usage:", stderr, StringComparison.Ordinal);
    }
}
