namespace ChronoGuard.Sidecar.Hosting;

/// <summary>
/// Every key of our configuration sections (SPEC §3) and what it accepts. A key that is not here is a
/// start error, never silently ignored, so a new option needs its rule here as well as its property
/// (RunConfigurationTests compares this table with the options classes).
/// </summary>
internal static class ConfigurationSchema
{
    /// <summary>A day: long enough for any timeout, short enough that sums like drain + 5 s never overflow.</summary>
    public const int MaxMilliseconds = 86_400_000;

    /// <summary>Sections that belong to the host, not to us: their keys are not ours to police.</summary>
    public const string Logging = "Logging";

    public static readonly (string Section, SettingRule[] Rules)[] Sections =
    [
        ("Proxy",
        [
            SettingRule.Endpoint("Listen"),
            SettingRule.Number("MaxConnections", 1, 1_000_000),
            SettingRule.Number("MaxTunnelsPerAgent", 1, 1_000_000),
            SettingRule.Number("ConnectTimeoutMs", 1, MaxMilliseconds),
            SettingRule.Number("HeaderTimeoutMs", 1, MaxMilliseconds),
            SettingRule.Number("IdleTimeoutMs", 1, MaxMilliseconds),
            SettingRule.Number("BodyTimeoutMs", 1, MaxMilliseconds),
            SettingRule.Number("MaxHeaderBytes", 1024, 1024 * 1024),
            SettingRule.Number("DrainTimeoutMs", 1, MaxMilliseconds),
            SettingRule.Listeners("Listeners"),
        ]),
        ("Socks",
        [
            SettingRule.OptionalEndpoint("Listen"),
            SettingRule.Listeners("Listeners"),
        ]),
        ("Stats",
        [
            SettingRule.Endpoint("Listen"),
        ]),
        ("Policy",
        [
            SettingRule.Text("Path", required: false),
            SettingRule.Flag("Watch"),
        ]),
        ("Audit",
        [
            SettingRule.Text("Directory", required: true),
            SettingRule.Choice("Durability", "batched", "commit-before-forward"),
            SettingRule.Number("CommitIntervalMs", 1, 60_000),
            // Each slot is a resident 1.4 KiB record: 2^20 slots are 1.4 GiB.
            SettingRule.Number("QueueCapacity", 16, 1 << 20),
            SettingRule.Text("HmacKeyFile", required: false),
            // FASTER needs a segment of at least one 512 KiB page (PageSizeBits 19).
            SettingRule.Number("SegmentSizeBits", 19, 40),
            SettingRule.Number("RetainSegments", 0, 1_000_000),
            // Bytes; unset is half the filesystem. The writer also refuses less than two segments.
            SettingRule.Bytes("MaxBytes", 1 << 20),
            SettingRule.Number("MaxBatch", 1, 65_536),
            SettingRule.Choice("OnFailure", "refuse", "forward"),
            SettingRule.Number("CommitTimeoutMs", 1, MaxMilliseconds),
            SettingRule.Text("SigningKeyFile", required: false),
            SettingRule.Number("CheckpointIntervalMs", 1, MaxMilliseconds),
            // 0 = no limit: every unauthenticated refusal is recorded one by one (as before the limit).
            SettingRule.Number("UnauthenticatedPerSecond", 0, 1_000_000),
        ]),
        ("Inspection",
        [
            SettingRule.Text("CaCertFile", required: false),
            SettingRule.Text("CaKeyFile", required: false),
            SettingRule.Text("UpstreamTrustFile", required: false),
            // Each cached host holds a leaf, its key and a certificate context: a few KiB.
            SettingRule.Number("LeafCacheSize", 1, 1_000_000),
        ]),
        ("Transparent",
        [
            SettingRule.OptionalEndpoint("Listen"),
            SettingRule.OptionalEndpoint("Listen6"),
            SettingRule.Text("Agent", required: false),
            SettingRule.Number("FirstBytesMs", 1, 60_000),
            SettingRule.CidrList("ExcludeCidrs"),
            SettingRule.Listeners("Listeners", withUid: true),
        ]),
        ("Admin",
        [
            SettingRule.OptionalEndpoint("Listen"),
            SettingRule.Tokens("TokenSha256"),
            // An hour at most: a client waiting longer has given up, and the connection held all along.
            SettingRule.Number("AskTimeoutMs", 1, 3_600_000),
            SettingRule.Number("MaxPending", 1, 100_000),
        ]),
        ("Dns",
        [
            SettingRule.OptionalEndpoint("Listen"),
            SettingRule.OptionalEndpoint("Upstream", "empty for the first nameserver of /etc/resolv.conf"),
            SettingRule.Text("Agent", required: false),
            SettingRule.Number("MinTtlSeconds", 0, 86_400),
            SettingRule.Number("MaxTtlSeconds", 1, 604_800),
            SettingRule.Choice("RefuseStyle", "nxdomain", "refused"),
            SettingRule.Number("UpstreamTimeoutMs", 1, 60_000),
        ]),
    ];

    /// <summary><c>Logging:Format</c>: one JSON object per line (the default, for log pipelines) or one plain line (<c>simple</c> is the .NET name for it).</summary>
    public static readonly SettingRule LogFormat = SettingRule.Choice("Format", "json", "text", "simple");

    /// <summary><c>Logging:Console:FormatterName</c>, the .NET console logger's own switch: the same choice under its names.</summary>
    public static readonly SettingRule ConsoleFormatter = SettingRule.Choice("FormatterName", "json", "simple", "text");

    /// <summary><c>Logging:Refusals</c> (SPEC §3, §9): which decisions get a line on stdout.</summary>
    public static readonly SettingRule LogRefusals = SettingRule.Choice("Refusals", "refusals", "all", "none");

    /// <summary>Values <c>Logging:LogLevel:*</c> accepts (Microsoft.Extensions.Logging.LogLevel names).</summary>
    public static readonly SettingRule LogLevel = SettingRule.Choice("LogLevel", "Trace", "Debug", "Information", "Warning", "Error", "Critical", "None");
}
