using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Inspection;

/// <summary>The real binary: <c>ca init</c>, then <c>run</c> with the CA it wrote, refused while the key is open to others.</summary>
public sealed class InspectionStartTests
{
    private static string[] Run(TempDir dir) => ["run", "--listen", "127.0.0.1:0", "--stats", "127.0.0.1:0", "--audit-dir", dir.File("audit")];

    private static Dictionary<string, string> Inspection(string cert, string key, string? trust = null)
    {
        var env = new Dictionary<string, string> { ["CHRONOGUARD__Inspection__CaCertFile"] = cert, ["CHRONOGUARD__Inspection__CaKeyFile"] = key };
        if (trust is not null)
        {
            env["CHRONOGUARD__Inspection__UpstreamTrustFile"] = trust;
        }

        return env;
    }

    private static async Task CaInitAsync(TempDir dir)
    {
        var init = await SidecarRun.RunAsync(dir.Path, ["ca", "init", "--out", dir.File("ca"), "--permit", "example.com"]);
        Assert.True(init.ExitCode == 0, init.Stderr);
        Assert.StartsWith($"wrote {dir.File("ca/ca.crt")} ", init.Stdout, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0b110_100_100)] // 0644
    [InlineData(0b110_100_000)] // 0640
    [InlineData(0b100_000_100)] // 0404
    [InlineData(0b110_010_000)] // 0620
    [InlineData(0b110_000_001)] // 0601
    public async Task Run_RefusesACaKeyThatGroupOrOthersCanAccess(int mode)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        using var dir = new TempDir();
        await CaInitAsync(dir);
        var key = dir.File("ca/ca.key");
        File.SetUnixFileMode(key, (UnixFileMode)mode);

        var run = await SidecarRun.RunAsync(dir.Path, Run(dir), Inspection(dir.File("ca/ca.crt"), key));

        Assert.Equal(2, run.ExitCode);
        Assert.Equal($"Inspection:CaKeyFile {key}: group or others can access the CA key (mode 0{Convert.ToString(mode, 8)}); run chmod 600 {key}", run.Stderr.TrimEnd());
        Assert.False(Directory.Exists(dir.File("audit")), "nothing may start with an open CA key");
    }

    [Theory]
    [InlineData(0b110_000_000)] // 0600
    [InlineData(0b100_000_000)] // 0400
    public async Task Run_StartsWithThePrivateCa_AndSaysInspectionIsOn(int mode)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        using var dir = new TempDir();
        await CaInitAsync(dir);
        File.SetUnixFileMode(dir.File("ca/ca.key"), (UnixFileMode)mode);

        await using var sidecar = await SidecarProcess.StartAsync(dir.Path, environment: Inspection(dir.File("ca/ca.crt"), dir.File("ca/ca.key")));

        var line = await sidecar.WaitForOutputAsync(l => l.Contains("HTTPS inspection on", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
        Assert.Contains("may sign only within example.com", line, StringComparison.Ordinal);
        using (var cert = X509CertificateLoader.LoadCertificateFromFile(dir.File("ca/ca.crt")))
        {
            Assert.Contains($"(sha256 {Convert.ToHexStringLower(cert.GetCertHash(HashAlgorithmName.SHA256))})", line, StringComparison.Ordinal);
        }

        Assert.Contains("leaves cached for up to 1024 hosts", line, StringComparison.Ordinal);
        Assert.Contains("upstream certificates judged by the system trust store", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_NamesTheSettingAndFile_OfACaThatCannotBeUsed()
    {
        using var dir = new TempDir();
        await CaInitAsync(dir);
        var cert = dir.File("ca/ca.crt");
        var key = dir.File("ca/ca.key");
        File.WriteAllText(dir.File("junk.pem"), "junk\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(dir.File("junk.pem"), UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        (Dictionary<string, string> Env, string Expected)[] cases =
        [
            (Inspection(dir.File("none.crt"), key), $"Inspection:CaCertFile {dir.File("none.crt")}: no such file"),
            (Inspection(cert, dir.File("none.key")), $"Inspection:CaKeyFile {dir.File("none.key")}: no such file"),
            (Inspection(key, key), $"Inspection:CaCertFile {key}: not a PEM certificate (chronoguard ca init makes one)"),
            (Inspection(cert, dir.File("junk.pem")), $"Inspection:CaKeyFile {dir.File("junk.pem")}: not an unencrypted PEM ECDSA P-256 private key (chronoguard ca init makes one)"),
            (Inspection(cert, key, dir.File("junk.pem")), $"Inspection:UpstreamTrustFile {dir.File("junk.pem")}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)"),
            (Inspection(cert, key, dir.File("none.pem")), $"Inspection:UpstreamTrustFile {dir.File("none.pem")}: no such file"),
            (new() { ["CHRONOGUARD__Inspection__CaCertFile"] = cert }, "environment CHRONOGUARD__Inspection__CaCertFile: Inspection:CaCertFile is set but Inspection:CaKeyFile is not (inspection needs the CA's certificate and its key)"),
            (new() { ["CHRONOGUARD__Inspection__CaKeyFile"] = key }, "environment CHRONOGUARD__Inspection__CaKeyFile: Inspection:CaKeyFile is set but Inspection:CaCertFile is not (inspection needs the CA's certificate and its key)"),
            (new() { ["CHRONOGUARD__Inspection__UpstreamTrustFile"] = cert }, "environment CHRONOGUARD__Inspection__UpstreamTrustFile: Inspection:UpstreamTrustFile is set but inspection is off (set Inspection:CaCertFile and Inspection:CaKeyFile)"),
            (new() { ["CHRONOGUARD__Inspection__LeafCacheSize"] = "0" }, "environment CHRONOGUARD__Inspection__LeafCacheSize: Inspection:LeafCacheSize: 0 is out of range (allowed: 1..1000000)"),
            (new() { ["CHRONOGUARD__Inspection__CaFile"] = cert }, "environment CHRONOGUARD__Inspection__CaFile: Inspection:CaFile is not a setting (allowed in Inspection: CaCertFile, CaKeyFile, UpstreamTrustFile, LeafCacheSize)"),
        ];
        foreach (var (env, expected) in cases)
        {
            var run = await SidecarRun.RunAsync(dir.Path, Run(dir), env);
            Assert.True(run.ExitCode == 2, $"{expected}: exit {run.ExitCode}, {run.Stderr}");
            Assert.Equal(expected, run.Stderr.TrimEnd());
            Assert.False(Directory.Exists(dir.File("audit")), expected);
        }
    }

    [Fact]
    public async Task APolicyThatInspects_LoadsOnlyWhenInspectionIsConfigured()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        using var dir = new TempDir();
        await CaInitAsync(dir);
        File.WriteAllText(dir.File("policy.json"), """
            { "version": 1, "defaultAction": "deny",
              "agents": [ { "id": "bot", "tokenSha256": "0000000000000000000000000000000000000000000000000000000000000000", "policies": ["p"] } ],
              "policies": [ { "name": "p", "allowedDomains": ["api.example.com"], "inspect": ["api.example.com"] } ] }
            """);
        string[] args = [.. Run(dir), "--policy", dir.File("policy.json")];

        var without = await SidecarRun.RunAsync(dir.Path, args);
        Assert.Equal(2, without.ExitCode);
        Assert.Contains("needs HTTPS inspection, which is not configured", without.Stderr, StringComparison.Ordinal);

        await using var sidecar = await SidecarProcess.StartAsync(dir.Path, ["--policy", dir.File("policy.json")], Inspection(dir.File("ca/ca.crt"), dir.File("ca/ca.key")));
        await sidecar.WaitForOutputAsync(l => l.Contains("HTTPS inspection on", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
    }

    [Theory]
    [InlineData("29", true)]
    [InlineData("31", false)]
    public async Task Run_WarnsAtStartOfACaThatExpiresWithinThirtyDays(string days, bool warned)
    {
        using var dir = new TempDir();
        var init = await SidecarRun.RunAsync(dir.Path, ["ca", "init", "--out", dir.File("ca"), "--days", days]);
        Assert.True(init.ExitCode == 0, init.Stderr);

        await using var sidecar = await SidecarProcess.StartAsync(dir.Path, environment: Inspection(dir.File("ca/ca.crt"), dir.File("ca/ca.key")));

        // The warning, when there is one, is logged just before the line that says inspection is on (one stream, in order).
        await sidecar.WaitForOutputAsync(l => l.Contains("HTTPS inspection on", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
        Assert.Equal(warned, sidecar.Output.Contains($"the inspection CA {dir.File("ca/ca.crt")} expires on", StringComparison.Ordinal));
        Assert.Equal(warned, sidecar.Output.Contains($", in {days} days: inspected tunnels fail from then on", StringComparison.Ordinal));
    }
}
