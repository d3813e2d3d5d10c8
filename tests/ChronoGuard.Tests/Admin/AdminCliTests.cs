using System.Net;
using System.Net.Sockets;
using ChronoGuard.Audit;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Admin;

/// <summary>
/// The CLI verbs over the admin API (SPEC §9), each run as its own process against the real sidecar:
/// a refused CONNECT, <c>chronoguard grant add</c>, the same CONNECT allowed and the grant in the
/// chain; a restart keeps it; revoke and expiry end it; <c>denials</c> shows what was refused; every
/// failure is one line with the usual exit code.
/// </summary>
public sealed class AdminCliTests
{
    private static Dictionary<string, string> Env(AdminRig rig, string tokenFile) => new()
    {
        [("CHRONOGUARD_ADMIN")] = $"http://{rig.Admin}",
        ["CHRONOGUARD_ADMIN_TOKEN_FILE"] = tokenFile,
    };

    private static string TokenFile(TempDir dir, string token)
    {
        var file = dir.File("admin-" + token.Length + ".token");
        File.WriteAllText(file, token + "\n");
        return file;
    }

    [Fact]
    public async Task Grant_add_from_another_process_allows_the_refused_connect_survives_a_restart_and_revoke_ends_it()
    {
        await using var origin = TcpOrigin.Echo();
        using var dir = new TempDir();
        File.WriteAllText(dir.File("policy.json"), AdminRig.Policy(origin.Port));
        await using var rig = await AdminRig.StartAsync(dir);
        var token = TokenFile(dir, AdminRig.AliceToken);

        Assert.Equal(403, (await rig.ConnectAsync("localhost", origin.Port)).Status);
        var denials = await SidecarRun.RunAsync(dir.Path, ["denials", "--since", "1h"], Env(rig, token));
        Assert.Equal(0, denials.ExitCode);
        Assert.Contains("COUNT", denials.Stdout, StringComparison.Ordinal);
        Assert.Matches(@"\n1 +DENY +default_deny +bot +localhost:" + origin.Port + " ", denials.Stdout);

        var added = await SidecarRun.RunAsync(dir.Path, ["grant", "add", "--agent", "bot", "--domain", "localhost", "--for", "1h", "--reason", "INC-9 mirror", "--admin", $"http://{rig.Admin}", "--token-file", token]);
        Assert.True(added.ExitCode == 0, added.Stderr);
        var id = added.Stdout.Split(':')[0];
        Assert.StartsWith("g-", id, StringComparison.Ordinal);
        Assert.Contains("agent bot may reach localhost until", added.Stdout, StringComparison.Ordinal);

        Assert.Equal(200, (await rig.ConnectAsync("localhost", origin.Port)).Status);

        await rig.RestartAsync(dir);
        var listed = await SidecarRun.RunAsync(dir.Path, ["grant", "list"], Env(rig, token));
        Assert.Equal(0, listed.ExitCode);
        Assert.Matches($@"\n{id} +bot +localhost +\S+ +ops-alice +INC-9 mirror", listed.Stdout);
        Assert.Equal(200, (await rig.ConnectAsync("localhost", origin.Port)).Status);

        var revoked = await SidecarRun.RunAsync(dir.Path, ["grant", "revoke", id, "--reason", "mirror is up"], Env(rig, TokenFile(dir, AdminRig.BobToken)));
        Assert.Equal((0, $"{id}: revoked\n"), (revoked.ExitCode, revoked.Stdout));
        Assert.Equal(403, (await rig.ConnectAsync("localhost", origin.Port)).Status);
        Assert.Equal("no grants in force\n", (await SidecarRun.RunAsync(dir.Path, ["grant", "list"], Env(rig, token))).Stdout);

        var again = await SidecarRun.RunAsync(dir.Path, ["grant", "revoke", id], Env(rig, token));
        Assert.Equal((1, $"grant revoke: no grant in force has the id '{id}'\n"), (again.ExitCode, again.Stderr));

        rig.Sidecar.Signal("TERM");
        Assert.Equal(0, await rig.Sidecar.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        var records = AuditReader.ReadDirectory(dir.File("audit")).Select(i => i.Entry!).ToList();
        Assert.Contains(records, r => r.Reason == "grant_add" && r.Rule == id && r.Path.Contains("by ops-alice", StringComparison.Ordinal) && r.Path.Contains("INC-9 mirror", StringComparison.Ordinal));
        Assert.Contains(records, r => r.Reason == "grant_revoke" && r.Rule == id && r.Path.Contains("by ops-bob", StringComparison.Ordinal) && r.Path.Contains("mirror is up", StringComparison.Ordinal));
        Assert.Equal(2, records.Count(r => r.Kind == AuditKind.Decision && r.Decision == "ALLOW" && r.Reason == "grant:INC-9 mirror"));
    }

    [Fact]
    public async Task A_grant_made_for_seconds_ends_by_itself()
    {
        await using var origin = TcpOrigin.Echo();
        using var dir = new TempDir();
        File.WriteAllText(dir.File("policy.json"), AdminRig.Policy(origin.Port));
        await using var rig = await AdminRig.StartAsync(dir);
        var env = Env(rig, TokenFile(dir, AdminRig.AliceToken));

        var added = await SidecarRun.RunAsync(dir.Path, ["grant", "add", "--agent", "bot", "--domain", "localhost", "--for", "2s", "--reason", "brief"], env);
        Assert.True(added.ExitCode == 0, added.Stderr);
        var id = added.Stdout.Split(':')[0];
        Assert.Equal(200, (await rig.ConnectAsync("localhost", origin.Port)).Status);

        await rig.Sidecar.WaitForOutputAsync(l => l.Contains($"runtime grant {id} expired", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
        Assert.Equal("no grants in force\n", (await SidecarRun.RunAsync(dir.Path, ["grant", "list"], env)).Stdout);
        Assert.Equal(403, (await rig.ConnectAsync("localhost", origin.Port)).Status);
    }

    [Fact]
    public async Task Failures_are_one_line_with_exit_1_for_the_server_and_2_for_usage()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("policy.json"), AdminRig.Policy(8080));
        await using var rig = await AdminRig.StartAsync(dir);
        var good = TokenFile(dir, AdminRig.AliceToken);
        var wrong = TokenFile(dir, "not-a-configured-token");
        File.WriteAllText(dir.File("empty.token"), string.Empty);
        using var closed = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        closed.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var nobody = $"http://{closed.LocalEndPoint}";

        var cases = new (string[] Args, Dictionary<string, string> Env, int Code, string Line)[]
        {
            (["grant", "list"], new() { ["CHRONOGUARD_ADMIN_TOKEN_FILE"] = good }, 2, "grant list: no admin API given: --admin http://HOST:PORT or CHRONOGUARD_ADMIN"),
            (["grant", "list", "--admin", $"http://{rig.Admin}"], new(), 2, "grant list: no token given: --token-file F or CHRONOGUARD_ADMIN_TOKEN_FILE"),
            (["grant", "list", "--token-file", dir.File("missing.token")], Env(rig, good), 2, "grant list: --token-file " + dir.File("missing.token")),
            (["denials", "--token-file", dir.File("empty.token")], Env(rig, good), 2, $"denials: --token-file {dir.File("empty.token")}: is empty"),
            (["grant", "list", "--admin", "ftp://x"], Env(rig, good), 2, "grant list: --admin 'ftp://x' is not http://HOST:PORT"),
            (["grant", "list"], Env(rig, wrong), 1, $"grant list: http://{rig.Admin}: the token in {wrong} was refused (401)"),
            (["denials", "--admin", nobody], Env(rig, good), 1, $"denials: {nobody}: connection refused"),
            (["grant", "add", "--agent", "ghost", "--domain", "a.test", "--for", "1h", "--reason", "r"], Env(rig, good), 1, "grant add: $.agent: unknown agent \"ghost\""),
            (["grant", "add", "--agent", "bot", "--domain", "*.com", "--for", "1h", "--reason", "r"], Env(rig, good), 1, "grant add: $.domains[0]: '*.com': a wildcard over a public suffix"),
            (["grant", "add", "--agent", "bot", "--domain", "a.test", "--for", "1h"], Env(rig, good), 2, "grant add: --reason is required"),
            (["grant", "add", "--agent", "bot", "--domain", "a.test", "--reason", "r"], Env(rig, good), 2, "grant add: give exactly one of --for and --expires"),
            (["grant", "add", "--agent", "bot", "--domian", "a.test"], Env(rig, good), 2, "grant add: unknown option '--domian' (did you mean --domain?)"),
            (["grant", "add", "extra"], Env(rig, good), 2, "grant add: unexpected argument 'extra'"),
            (["grant", "list", "extra"], Env(rig, good), 2, "grant list: unexpected argument 'extra'"),
            (["grant", "revoke"], Env(rig, good), 2, "grant revoke: the grant's ID is required"),
            (["grant", "revoke", "a", "b"], Env(rig, good), 2, "grant revoke: unexpected argument 'b' (revoke takes one ID)"),
            (["grant", "revok", "a"], Env(rig, good), 2, "grant: unknown subcommand 'revok' (did you mean 'revoke'?"),
            (["denials", "--since"], Env(rig, good), 2, "denials: --since needs a value"),
            (["denials", "--since", "yesterday"], Env(rig, good), 1, "denials: since: 'yesterday' is not a time"),
            (["denials", "extra"], Env(rig, good), 2, "denials: unexpected argument 'extra'"),
        };
        foreach (var (args, env, code, line) in cases)
        {
            var result = await SidecarRun.RunAsync(dir.Path, args, env);
            var what = string.Join(' ', args) + " -> " + result.ExitCode + " " + result.Stderr;
            Assert.True(result.ExitCode == code, what);
            Assert.True(result.Stderr.StartsWith(line, StringComparison.Ordinal), what);
            Assert.True(result.Stderr.TrimEnd('\n').Split('\n').Length == 1, what);
            Assert.DoesNotContain(AdminRig.AliceToken, result.Stderr, StringComparison.Ordinal);
        }
    }
}
