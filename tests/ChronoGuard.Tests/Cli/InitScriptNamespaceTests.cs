using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Cli;

/// <summary>
/// deploy/init/chronoguard-init.sh run for real in a private network namespace: idempotent with either
/// backend, its --dry-run is what it applies, bad settings are one-line errors that apply nothing,
/// and a failing iptables leaves the nft rules in place of its own half.
/// </summary>
public sealed class InitScriptNamespaceTests
{
    private static readonly string[] Settings = ["--sidecar-uid", "1654", "--exclude-cidrs", "127.0.0.1/32,fd00::1", "--listener", "2001=15002", "--transparent6-port", "15001"];

    [NamespaceFact]
    public async Task Iptables_rules_are_what_the_dry_run_prints_and_a_second_run_replaces_them_rather_than_adding()
    {
        await using var ns = await NetNamespace.CreateAsync();
        await ExternalTools.EnsureAsync("iptables", "nft");
        var (_, dryRun) = await ns.RunAsync("sh", [Script, .. Settings, "--backend", "iptables", "--dry-run"]);
        Assert.Equal("", await SavedAsync(ns)); // a dry run applies nothing

        await ns.InstallRulesAsync([.. Settings, "--backend", "iptables"]);
        var once = await SavedAsync(ns);
        await ns.InstallRulesAsync([.. Settings, "--backend", "iptables"]);
        Assert.Equal(once, await SavedAsync(ns));

        // The printed commands, run by hand, give the same rules.
        await ns.MustRunAsync("sh", Script, "--remove");
        Assert.Equal("", await SavedAsync(ns));
        await ns.MustRunAsync("sh", "-ec", dryRun);
        Assert.Equal(once, await SavedAsync(ns));

        Assert.Equal(4, once.Split('\n').Count(l => l == "-A OUTPUT -j CHRONOGUARD_OUTPUT")); // nat and filter, IPv4 and IPv6
        Assert.Contains("-A CHRONOGUARD_OUTPUT -p tcp -m owner --uid-owner 2001 -j REDIRECT --to-ports 15002", once, StringComparison.Ordinal);
        Assert.Contains("-A CHRONOGUARD_OUTPUT -d fd00::1/128 -p tcp -j RETURN", once, StringComparison.Ordinal);

    }

    [NamespaceFact]
    public async Task The_nft_table_is_what_the_dry_run_prints_and_a_second_run_replaces_it()
    {
        await using var ns = await NetNamespace.CreateAsync();
        await ExternalTools.EnsureAsync("iptables", "nft");
        var (_, dryRun) = await ns.RunAsync("sh", [Script, .. Settings, "--backend", "nft", "--dry-run"]);
        await ns.InstallRulesAsync([.. Settings, "--backend", "nft"]);
        var once = await ns.MustRunAsync("nft", "list", "table", "inet", "chronoguard");
        await ns.InstallRulesAsync([.. Settings, "--backend", "nft"]);
        Assert.Equal(once, await ns.MustRunAsync("nft", "list", "table", "inet", "chronoguard"));

        // The printed ruleset, fed to nft by hand, gives the same table.
        await ns.MustRunAsync("sh", Script, "--remove");
        var ruleset = dryRun[(dryRun.IndexOf('\n', StringComparison.Ordinal) + 1)..dryRun.LastIndexOf("RULES", StringComparison.Ordinal)];
        var (code, output) = await ns.RunAsync("nft", ["-f", "-"], stdin: ruleset);
        Assert.True(code == 0, output);
        Assert.Equal(once, await ns.MustRunAsync("nft", "list", "table", "inet", "chronoguard"));
        Assert.Contains("meta skuid 2001 redirect to :15002", once, StringComparison.Ordinal);
    }

    [NamespaceFact]
    public async Task Bad_settings_are_one_line_errors_that_apply_nothing()
    {
        await using var ns = await NetNamespace.CreateAsync();
        await ExternalTools.EnsureAsync("iptables", "nft");
        (string[] Args, Dictionary<string, string>? Env, string Says)[] cases =
        [
            (["--dns-port", "70000"], null, "--dns-port: '70000' is not a port (1-65535)"),
            (["--sidecar-uid", "app"], null, "--sidecar-uid: 'app' is not a numeric UID"),
            (["--exclude-cidrs", "10.0.0/8"], null, "--exclude-cidrs: '10.0.0/8' is not an IPv4 address or CIDR"),
            (["--exclude-cidrs", "fd00::/129"], null, "--exclude-cidrs: 'fd00::/129' is not an IPv6 address or CIDR"),
            (["--listener", "1654=15002"], null, "--listener: UID 1654 is the sidecar's own; its connections are never redirected"),
            (["--listener", "2001"], null, "--listener: '2001' is not UID=PORT"),
            (["--backend", "pf"], null, "--backend: 'pf' is not auto, iptables or nft"),
            (["--transparent-port", "", "--dns-port", "15053"], null, "no listener: give --transparent-port or --listener (Transparent:Listen or Transparent:Listeners)"),
            (["--frobnicate"], null, "unknown option '--frobnicate' (see --help)"),
            ([], new() { ["CHRONOGUARD__Transparent__Listen"] = "10.0.0.5:15001" }, "Transparent:Listen: '10.0.0.5:15001' listens on 10.0.0.5, but REDIRECT delivers to 127.0.0.1: listen on 127.0.0.1:15001"),
            ([], new() { ["CHRONOGUARD__Transparent__Listeners__0__Listen"] = "127.0.0.1:15002" }, "Transparent:Listeners:0:Uid is missing: the rules need the UID whose connections go to 127.0.0.1:15002"),
            // A value from the sidecar's settings is named as the setting it came from.
            ([], new() { ["CHRONOGUARD__Dns__Listen"] = "127.0.0.1:99999" }, "Dns:Listen: '99999' is not a port (1-65535)"),
            ([], new() { ["CHRONOGUARD__Transparent__ExcludeCidrs__0"] = "10.0.0/8" }, "Transparent:ExcludeCidrs: '10.0.0/8' is not an IPv4 address or CIDR"),
            ([], new() { ["CHRONOGUARD_SIDECAR_UID"] = "app" }, "CHRONOGUARD_SIDECAR_UID: 'app' is not a numeric UID"),
        ];
        foreach (var (args, env, says) in cases)
        {
            var (code, output) = await ns.RunAsync("env", [.. (env ?? []).Select(kv => $"{kv.Key}={kv.Value}"), "sh", Script, .. args]);
            Assert.Equal(1, code);
            Assert.Equal($"chronoguard-init: {says}", output.TrimEnd('\n'));
        }

        Assert.Equal("", await SavedAsync(ns));
    }

    [NamespaceFact]
    public async Task When_iptables_fails_the_nft_rules_are_installed_and_no_half_of_the_iptables_ones_stays()
    {
        await using var ns = await NetNamespace.CreateAsync();
        await ExternalTools.EnsureAsync("iptables", "nft");
        // IPv4 applies, then ip6tables-restore fails: the IPv4 half must go when nft takes over.
        var bin = Directory.CreateDirectory(Path.Combine(ns.Dir.Path, "bin")).FullName;
        await File.WriteAllTextAsync(Path.Combine(bin, "ip6tables-restore"), "#!/bin/sh\necho 'ip6tables-restore v1.8.9 (nf_tables): line 4 failed' >&2\nexit 1\n");
        await ns.MustRunAsync("chmod", "+x", Path.Combine(bin, "ip6tables-restore"));

        var (code, output) = await ns.RunAsync("env", [$"PATH={bin}:/usr/sbin:/usr/bin:/sbin:/bin", "sh", Script, "--exclude-cidrs", "127.0.0.1/32"]);
        Assert.True(code == 0, output);
        Assert.Contains("chronoguard-init: iptables failed: ip6tables-restore v1.8.9 (nf_tables): line 4 failed", output, StringComparison.Ordinal);
        Assert.Contains("chronoguard-init: nft rules installed", output, StringComparison.Ordinal);
        Assert.Equal("", await SavedAsync(ns));
        Assert.Contains("redirect to :15001", await ns.MustRunAsync("nft", "list", "table", "inet", "chronoguard"), StringComparison.Ordinal);
    }

    [NamespaceFact]
    public async Task The_pod_manifests_settings_give_the_rules_the_sidecar_there_listens_for()
    {
        await ExternalTools.EnsureAsync("iptables", "nft");
        var manifest = await File.ReadAllLinesAsync(Path.Combine(ExternalTools.RepoRoot, "deploy", "kubernetes", "transparent-pod.yaml"));
        var data = manifest.SkipWhile(l => l != "data:").Skip(1).TakeWhile(l => l != "---")
            .Where(l => l.StartsWith("  CHRONOGUARD", StringComparison.Ordinal))
            .Select(l => l.Trim().Split(':', 2))
            .ToDictionary(kv => kv[0], kv => kv[1].Split('#')[0].Trim().Trim('"'));
        Assert.Contains("runAsUser: " + data["CHRONOGUARD_SIDECAR_UID"], string.Join('\n', manifest), StringComparison.Ordinal);

        var (code, plan) = await ExternalTools.RunAsync("env", [.. data.Select(kv => $"{kv.Key}={kv.Value}"), "sh", Script, "--backend", "iptables", "--dry-run"], TimeSpan.FromSeconds(30));
        Assert.True(code == 0, plan);
        var v4 = plan[..plan.IndexOf("ip6tables-restore", StringComparison.Ordinal)];
        var v6 = plan[plan.IndexOf("ip6tables-restore", StringComparison.Ordinal)..];
        Assert.Contains("-A CHRONOGUARD_OUTPUT -m owner --uid-owner 1654 -j RETURN", v4, StringComparison.Ordinal);
        Assert.Contains("-A CHRONOGUARD_OUTPUT -p udp --dport 53 -j REDIRECT --to-ports 15053", v4, StringComparison.Ordinal);
        Assert.Contains("-A CHRONOGUARD_OUTPUT -p tcp -d 127.0.0.0/8 -j RETURN", v4, StringComparison.Ordinal);
        Assert.Contains("-A CHRONOGUARD_OUTPUT -p tcp -j REDIRECT --to-ports 15001", v4, StringComparison.Ordinal);
        Assert.DoesNotContain("REDIRECT", v6, StringComparison.Ordinal); // no Listen6: IPv6 is refused, not captured
        Assert.Contains("-A CHRONOGUARD_OUTPUT -p tcp -d ::1/128 -j RETURN", v6, StringComparison.Ordinal);
        Assert.Contains("-A CHRONOGUARD_OUTPUT -j DROP", v6, StringComparison.Ordinal);
    }

    private static string Script => Path.Combine(ExternalTools.RepoRoot, "deploy", "init", "chronoguard-init.sh");

    /// <summary>Every CHRONOGUARD line iptables-save and ip6tables-save print (empty: none of the script's rules).</summary>
    private static async Task<string> SavedAsync(NetNamespace ns)
    {
        var v4 = await ns.MustRunAsync("iptables-save");
        var v6 = await ns.MustRunAsync("ip6tables-save");
        return string.Join('\n', (v4 + v6).Split('\n').Where(l => l.Contains("CHRONOGUARD", StringComparison.Ordinal) && !l.StartsWith('#')));
    }
}
