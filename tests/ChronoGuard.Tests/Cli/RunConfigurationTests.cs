using ChronoGuard.Sidecar.Cli;
using ChronoGuard.Sidecar.Hosting;
using ChronoGuard.Tests.Support;
using Microsoft.Extensions.Configuration;

namespace ChronoGuard.Tests.Cli;

public sealed class RunConfigurationTests
{
    [Fact]
    public void Flags_override_the_file_and_the_file_overrides_embedded_defaults()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("cg.json"), """
            { "Proxy": { "Listen": "127.0.0.1:1111", "MaxConnections": 7 }, "Stats": { "Listen": "127.0.0.1:2222" } }
            """);
        Assert.Null(RunArguments.TryParse(["--config", dir.File("cg.json"), "--listen", "127.0.0.1:3333"], out var file, out var overrides));

        var builder = new ConfigurationBuilder();
        SidecarConfiguration.Add(builder, file, overrides);
        var settings = SidecarSettings.Bind(builder.Build());

        Assert.Equal("127.0.0.1:3333", settings.Proxy.Listen);
        Assert.Equal(7, settings.Proxy.MaxConnections);
        Assert.Equal("127.0.0.1:2222", settings.Stats.Listen);
        Assert.Equal(15_000, settings.Proxy.DrainTimeoutMs);
        Assert.Equal("./chronoguard-audit", settings.Audit.Directory);
    }

    [Theory]
    [InlineData("{ \"Proxy\": { \"MaxConnections\": \"lots\" } }", "Proxy:MaxConnections")]
    [InlineData("{ \"Proxy\": { \"Listen\": \"localhost:99999\" } }", "Proxy:Listen")]
    [InlineData("{ \"Proxy\": { \"HeaderTimeoutMs\": 0 } }", "Proxy:HeaderTimeoutMs")]
    [InlineData("{ \"Proxy\": { ", "cg.json")]
    public async Task Bad_configuration_is_one_line_naming_the_place_and_exit_2(string json, string named)
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("cg.json"), json);
        var stderr = new StringWriter();

        var code = await RunBoundedAsync(["--config", dir.File("cg.json")], stderr);

        Assert.Equal(2, code);
        var line = stderr.ToString().TrimEnd();
        Assert.DoesNotContain('\n', line);
        Assert.Contains(named, line, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{ "Audit": { "Durability": "bached" } }""", "cg.json: Audit:Durability: 'bached' is not allowed (allowed: batched, commit-before-forward)")]
    [InlineData("""{ "Audit": { "Durability": null } }""", "cg.json: Audit:Durability: '' is not allowed (allowed: batched, commit-before-forward)")]
    [InlineData("""{ "Policy": { "Watch": "yes" } }""", "cg.json: Policy:Watch: 'yes' is not allowed (allowed: true, false)")]
    [InlineData("""{ "Logging": { "LogLevel": { "Default": "Informaton" } } }""", "cg.json: Logging:LogLevel:Default: 'Informaton' is not allowed (allowed: Trace, Debug, Information, Warning, Error, Critical, None)")]
    [InlineData("""{ "Logging": { "Format": "xml" } }""", "cg.json: Logging:Format: 'xml' is not allowed (allowed: json, text, simple)")]
    [InlineData("""{ "Logging": { "Format": { "Kind": "text" } } }""", "cg.json: Logging:Format must be a single value, not an object or a list")]
    [InlineData("""{ "Logging": { "Console": { "FormatterName": "systemd" } } }""", "cg.json: Logging:Console:FormatterName: 'systemd' is not allowed (allowed: json, simple, text)")]
    [InlineData("""{ "Logging": { "Format": "json", "Console": { "FormatterName": "simple" } } }""", "cg.json: Logging:Console:FormatterName 'simple' contradicts Logging:Format 'json' (set one of them)")]
    [InlineData("""{ "Logging": { "Refusals": "denials" } }""", "cg.json: Logging:Refusals: 'denials' is not allowed (allowed: refusals, all, none)")]
    [InlineData("""{ "Proxy": { "ConnectTimeoutMs": -1 } }""", "cg.json: Proxy:ConnectTimeoutMs: -1 is out of range (allowed: 1..86400000)")]
    [InlineData("""{ "Proxy": { "DrainTimeoutMs": 2147483647 } }""", "cg.json: Proxy:DrainTimeoutMs: 2147483647 is out of range (allowed: 1..86400000)")]
    [InlineData("""{ "Proxy": { "MaxConnections": 0 } }""", "cg.json: Proxy:MaxConnections: 0 is out of range (allowed: 1..1000000)")]
    [InlineData("""{ "Proxy": { "MaxHeaderBytes": 99999999999 } }""", "cg.json: Proxy:MaxHeaderBytes: '99999999999' is not a whole number (allowed: 1024..1048576)")]
    [InlineData("""{ "Audit": { "QueueCapacity": 0 } }""", "cg.json: Audit:QueueCapacity: 0 is out of range (allowed: 16..1048576)")]
    [InlineData("""{ "Audit": { "SegmentSizeBits": 12 } }""", "cg.json: Audit:SegmentSizeBits: 12 is out of range (allowed: 19..40)")]
    [InlineData("""{ "Audit": { "UnauthenticatedPerSecond": -1 } }""", "cg.json: Audit:UnauthenticatedPerSecond: -1 is out of range (allowed: 0..1000000)")]
    [InlineData("""{ "Audit": { "Directory": "" } }""", "cg.json: Audit:Directory: is empty (a value is required)")]
    [InlineData("""{ "Proxy": { "Listeners": [ { "Listen": "127.0.0.1:3129" } ] } }""", "cg.json: Proxy:Listeners:0: needs both Listen and Agent")]
    [InlineData("""{ "Proxy": { "Listeners": [ { "Listen": "127.0.0.1:99999", "Agent": "bot" } ] } }""", "cg.json: Proxy:Listeners:0:Listen: '127.0.0.1:99999' is not HOST:PORT (allowed: an IP address, [IPv6], localhost or *, then a port 0-65535)")]
    [InlineData("""{ "Proxy": { "Listeners": [ { "Listen": "127.0.0.1:3129", "Agent": "" } ] } }""", "cg.json: Proxy:Listeners:0:Agent: is empty (an agent id from the policy file is required)")]
    [InlineData("""{ "Proxy": { "Listeners": [ { "Listen": "127.0.0.1:3129", "Agent": "bot", "Port": 1 } ] } }""", "cg.json: Proxy:Listeners:0:Port is not a setting (allowed in a listener: Listen, Agent)")]
    [InlineData("""{ "Socks": { "Listen": "1080" } }""", "cg.json: Socks:Listen: '1080' is not HOST:PORT (allowed: empty for off, or an IP address, [IPv6], localhost or *, then a port 0-65535)")]
    [InlineData("""{ "Socks": { "Listeners": [ { "Agent": "bot" } ] } }""", "cg.json: Socks:Listeners:0: needs both Listen and Agent")]
    [InlineData("""{ "Proxy": { "Listeners": "127.0.0.1:3129" } }""", "cg.json: Proxy:Listeners: must be a list of { \"Listen\": HOST:PORT, \"Agent\": id } objects")]
    [InlineData("""{ "Audit": { "MaxBytes": "1GiB" } }""", "cg.json: Audit:MaxBytes: '1GiB' is not a whole number of bytes (allowed: 0 for unbounded, or at least 1048576)")]
    [InlineData("""{ "Audit": { "MaxBytes": 4096 } }""", "cg.json: Audit:MaxBytes: 4096 is too small (allowed: 0 for unbounded, or at least 1048576)")]
    [InlineData("""{ "Audit": { "MaxBytes": -1 } }""", "cg.json: Audit:MaxBytes: '-1' is not a whole number of bytes (allowed: 0 for unbounded, or at least 1048576)")]
    [InlineData("""{ "Stats": { "Listen": "127.0.0.1:70000" } }""", "cg.json: Stats:Listen: '127.0.0.1:70000' is not HOST:PORT (allowed: an IP address, [IPv6], localhost or *, then a port 0-65535)")]
    [InlineData("""{ "Proxy": { "Listen": ["127.0.0.1:1"] } }""", "cg.json: Proxy:Listen must be a single value, not an object or a list")]
    [InlineData("""{ "Proxy": "127.0.0.1:1" }""", "cg.json: Proxy must be an object of settings, not the value '127.0.0.1:1'")]
    [InlineData("""{ "Proxy": { "MaxConections": 5 } }""", "cg.json: Proxy:MaxConections is not a setting (allowed in Proxy: Listen, MaxConnections, MaxTunnelsPerAgent, ConnectTimeoutMs, HeaderTimeoutMs, IdleTimeoutMs, BodyTimeoutMs, MaxHeaderBytes, DrainTimeoutMs, Listeners)")]
    [InlineData("""{ "Audit": { "Durability": "batched", "Sign": { "Key": "k" } } }""", "cg.json: Audit:Sign is not a setting (allowed in Audit: Directory, Durability, CommitIntervalMs, QueueCapacity, HmacKeyFile, SegmentSizeBits, RetainSegments, MaxBytes, MaxBatch, OnFailure, CommitTimeoutMs, SigningKeyFile, CheckpointIntervalMs, UnauthenticatedPerSecond)")]
    [InlineData("""{ "Dns": { "Listen": "127.0.0.1:15053" } }""", "cg.json: Dns:Listen is set but neither Dns:Agent nor Transparent:Agent names the agent whose policies decide the questions")]
    [InlineData("""{ "Dns": { "Listen": "127.0.0.1:15053", "Agent": "bot", "MaxTtlSeconds": 10 } }""", "cg.json: Dns:MinTtlSeconds (30) is above Dns:MaxTtlSeconds (10)")]
    [InlineData("""{ "Dns": { "RefuseStyle": "drop" } }""", "cg.json: Dns:RefuseStyle: 'drop' is not allowed (allowed: nxdomain, refused)")]
    [InlineData("""{ "Dns": { "Upstream": "dns.google:53" } }""", "cg.json: Dns:Upstream: 'dns.google:53' is not HOST:PORT (allowed: empty for the first nameserver of /etc/resolv.conf, or an IP address, [IPv6], localhost or *, then a port 0-65535)")]
    [InlineData("""{ "Transparent": { "Listen": "127.0.0.1:15001" } }""", "cg.json: Transparent:Listen is set but Transparent:Agent is empty (redirected connections cannot log in: name the agent they belong to)")]
    [InlineData("""{ "Transparent": { "Listen6": "[::1]:15001" } }""", "cg.json: Transparent:Listen6 is set but Transparent:Agent is empty (redirected connections cannot log in: name the agent they belong to)")]
    [InlineData("""{ "Transparent": { "FirstBytesMs": 0 } }""", "cg.json: Transparent:FirstBytesMs: 0 is out of range (allowed: 1..60000)")]
    [InlineData("""{ "Transparent": { "ExcludeCidrs": [ "127.0.0.1" ] } }""", "cg.json: Transparent:ExcludeCidrs:0: '127.0.0.1' is not a CIDR block (allowed: ADDRESS/PREFIX with no host bits set, such as 127.0.0.0/8 or ::1/128)")]
    [InlineData("""{ "Transparent": { "ExcludeCidrs": [ "10.0.0.1/8" ] } }""", "cg.json: Transparent:ExcludeCidrs:0: '10.0.0.1/8' is not a CIDR block (allowed: ADDRESS/PREFIX with no host bits set, such as 127.0.0.0/8 or ::1/128)")]
    [InlineData("""{ "Transparent": { "ExcludeCidrs": "127.0.0.0/8" } }""", "cg.json: Transparent:ExcludeCidrs: '127.0.0.0/8' is not a list (allowed: a list of CIDR blocks such as [\"127.0.0.0/8\", \"::1/128\"]; in the environment, Transparent__ExcludeCidrs__0=127.0.0.0/8)")]
    [InlineData("""{ "Transparent": { "Listeners": [ { "Listen": "127.0.0.1:15002", "Agent": "bot" } ] } }""", "cg.json: Transparent:Listeners:0: needs Listen, Agent and Uid")]
    [InlineData("""{ "Transparent": { "Listeners": [ { "Listen": "127.0.0.1:15002", "Agent": "bot", "Uid": -1 } ] } }""", "cg.json: Transparent:Listeners:0:Uid: -1 is out of range (allowed: 0..2147483647)")]
    [InlineData("""{ "Audti": { "Durability": "batched" } }""", "cg.json: Audti is not a configuration section (allowed: Proxy, Socks, Stats, Policy, Audit, Inspection, Transparent, Admin, Dns, Logging)")]
    public async Task Every_bad_value_or_unknown_key_in_the_file_is_one_exact_line_and_exit_2(string json, string expected)
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("cg.json"), json);
        var stderr = new StringWriter();

        var code = await RunBoundedAsync(["--config", dir.File("cg.json")], stderr);

        Assert.Equal(2, code);
        Assert.Equal(expected.Replace("cg.json", dir.File("cg.json"), StringComparison.Ordinal), stderr.ToString().TrimEnd());
    }

    [Fact]
    public void Keys_match_case_insensitively_and_valid_values_of_every_kind_pass()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("cg.json"), """
            {
              "proxy": { "listen": "[::1]:0", "maxconnections": 5, "MaxTunnelsPerAgent": 1, "ConnectTimeoutMs": 86400000, "HeaderTimeoutMs": 1,
                         "IdleTimeoutMs": 10, "MaxHeaderBytes": 1024, "DrainTimeoutMs": 1, "Listeners": [ { "listen": "127.0.0.1:0", "AGENT": "jvm-bot" } ] },
              "Stats": { "Listen": "*:0" },
              "Policy": { "Path": "", "Watch": false },
              "Audit": { "Directory": "a", "Durability": "Commit-Before-Forward", "CommitIntervalMs": 1, "QueueCapacity": 16, "HmacKeyFile": "",
                         "SegmentSizeBits": 19, "RetainSegments": 0, "MaxBytes": 0, "MaxBatch": 65536, "UnauthenticatedPerSecond": 0 },
              "Inspection": { "caCertFile": "", "CaKeyFile": "", "UpstreamTrustFile": "", "LeafCacheSize": 1000000 },
              "Logging": { "LogLevel": { "Default": "warning", "ChronoGuard": "Debug" }, "Console": { "LogLevel": { "Default": "None" }, "FormatterName": "json" } }
            }
            """);
        var builder = new ConfigurationBuilder();
        SidecarConfiguration.Add(builder, dir.File("cg.json"), []);

        var settings = SidecarSettings.Bind(builder.Build(), dir.File("cg.json"), new Dictionary<string, string>());

        Assert.Equal(5, settings.Proxy.MaxConnections);
        Assert.Equal(("127.0.0.1:0", "jvm-bot"), (settings.Proxy.Listeners[0].Listen, settings.Proxy.Listeners[0].Agent));
        Assert.Equal("Commit-Before-Forward", settings.Audit.Durability);
        Assert.Equal(65536, settings.Audit.MaxBatch);
        Assert.Equal(0, settings.Audit.UnauthenticatedPerSecond);
        Assert.False(settings.Policy.Watch);
        Assert.Equal(1_000_000, settings.Inspection.LeafCacheSize);
        Assert.False(settings.Inspection.Enabled);
    }

    [Theory]
    [InlineData("CHRONOGUARD__Audit__Durability", "bached", "environment CHRONOGUARD__Audit__Durability: Audit:Durability: 'bached' is not allowed (allowed: batched, commit-before-forward)")]
    [InlineData("CHRONOGUARD__Proxy__IdleTimeoutMs", "0", "environment CHRONOGUARD__Proxy__IdleTimeoutMs: Proxy:IdleTimeoutMs: 0 is out of range (allowed: 1..86400000)")]
    [InlineData("CHRONOGUARD__Proxy__MaxConections", "5", "environment CHRONOGUARD__Proxy__MaxConections: Proxy:MaxConections is not a setting (allowed in Proxy: Listen, MaxConnections, MaxTunnelsPerAgent, ConnectTimeoutMs, HeaderTimeoutMs, IdleTimeoutMs, BodyTimeoutMs, MaxHeaderBytes, DrainTimeoutMs, Listeners)")]
    [InlineData("CHRONOGUARD__Audti__Durability", "batched", "environment CHRONOGUARD__Audti__Durability: Audti is not a configuration section (allowed: Proxy, Socks, Stats, Policy, Audit, Inspection, Transparent, Admin, Dns, Logging)")]
    [InlineData("CHRONOGUARD_AUDIT_DURABILITY", "batched", "environment CHRONOGUARD_AUDIT_DURABILITY: not read, settings are CHRONOGUARD__Section__Key (for example CHRONOGUARD__Audit__Durability)")]
    public async Task A_bad_environment_variable_stops_the_real_binary_with_one_line_naming_it(string name, string value, string expected)
    {
        using var dir = new TempDir();

        var run = await SidecarRun.RunAsync(dir.Path, ["run", "--listen", "127.0.0.1:0", "--stats", "127.0.0.1:0", "--audit-dir", dir.File("audit")], new Dictionary<string, string> { [name] = value });

        Assert.Equal(2, run.ExitCode);
        Assert.Equal(expected, run.Stderr.TrimEnd());
        Assert.False(Directory.Exists(dir.File("audit")), "nothing may start before the configuration is valid");
    }

    [Fact]
    public async Task A_bad_flag_value_names_the_flag_and_the_key()
    {
        var stderr = new StringWriter();

        using var dir = new TempDir();
        var code = await RunBoundedAsync(["--stats", "127.0.0.1:0", "--audit-dir", dir.File("audit"), "--listen", "nonsense"], stderr);

        Assert.Equal(2, code);
        Assert.Equal("--listen: Proxy:Listen: 'nonsense' is not HOST:PORT (allowed: an IP address, [IPv6], localhost or *, then a port 0-65535)", stderr.ToString().TrimEnd());
    }

    /// <summary>
    /// <c>run</c> in-process, stopped after 10 s: a configuration that wrongly passes then fails on its
    /// exit code instead of hanging the test run.
    /// </summary>
    private static async Task<int> RunBoundedAsync(string[] args, TextWriter stderr)
    {
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        return await RunCommand.RunAsync(args, stderr, stop.Token);
    }

    /// <summary>The schema and the options classes name the same keys: an option added without a rule would be refused as unknown.</summary>
    [Fact]
    public void The_schema_has_exactly_one_rule_per_bindable_option()
    {
        var types = new Dictionary<string, Type>
        {
            ["Proxy"] = typeof(ChronoGuard.Proxy.ProxyOptions),
            ["Socks"] = typeof(ChronoGuard.Proxy.SocksOptions),
            ["Stats"] = typeof(StatsSection),
            ["Policy"] = typeof(PolicySection),
            ["Audit"] = typeof(ChronoGuard.Audit.AuditOptions),
            ["Inspection"] = typeof(ChronoGuard.Inspection.InspectionOptions),
            ["Transparent"] = typeof(ChronoGuard.Proxy.TransparentOptions),
            ["Dns"] = typeof(ChronoGuard.Proxy.DnsOptions),
            ["Admin"] = typeof(ChronoGuard.Admin.AdminOptions),
        };
        Assert.Equal(types.Keys.Order(), ConfigurationSchema.Sections.Select(s => s.Section).Order());
        foreach (var (section, rules) in ConfigurationSchema.Sections)
        {
            var properties = types[section].GetProperties().Where(p => p.CanWrite).Select(p => p.Name).Order();
            Assert.Equal(properties, rules.Select(r => r.Key).Order());
        }
    }

    [Theory]
    [InlineData(new[] { "--bogus", "x" }, "unknown option '--bogus'")]
    [InlineData(new[] { "--listen" }, "--listen needs a value")]
    [InlineData(new[] { "--config", "/nonexistent/cg.json" }, "/nonexistent/cg.json: config file not found")]
    public async Task Bad_arguments_exit_2_with_one_line(string[] args, string message)
    {
        var stderr = new StringWriter();
        Assert.Equal(2, await RunCommand.RunAsync(args, stderr, CancellationToken.None));
        Assert.Contains(message, stderr.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Version_and_help_exit_0()
    {
        var stdout = new StringWriter();
        Assert.Equal(0, await CommandLine.RunAsync(["--version"], stdout, TextWriter.Null));
        Assert.StartsWith("chronoguard ", stdout.ToString(), StringComparison.Ordinal);
        Assert.Equal(2, await CommandLine.RunAsync(["frobnicate"], TextWriter.Null, TextWriter.Null));
    }
}
