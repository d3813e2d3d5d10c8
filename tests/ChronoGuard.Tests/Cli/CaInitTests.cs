using ChronoGuard.Inspection;
using ChronoGuard.Sidecar.Cli;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Cli;

public sealed class CaInitTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 4, 12, 0, 0, TimeSpan.Zero);

    private static async Task<(int Code, string Stdout, string Stderr)> CliAsync(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = await CommandLine.RunAsync(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public void Init_WritesACaThatLoads_WithItsPermitsAndDays()
    {
        using var dir = new TempDir();
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = CaCommand.Run(["init", "--out", dir.File("ca"), "--permit", "example.com", "--permit", "*.Internal.Test", "--days", "30"], stdout, stderr, new ManualTimeProvider(Now));

        Assert.True(code == 0, stderr.ToString());
        Assert.Equal(string.Empty, stderr.ToString());
        Assert.Equal(
            $"wrote {dir.File("ca/ca.crt")} (Inspection:CaCertFile; agents trust it) and {dir.File("ca/ca.key")} (Inspection:CaKeyFile, mode 0600), valid until 2027-01-03T12:00:00Z; it may sign only for example.com and *.example.com, *.internal.test\n",
            stdout.ToString());
        using var ca = CertificateAuthority.Load(dir.File("ca/ca.crt"), dir.File("ca/ca.key"), new ManualTimeProvider(Now));
        Assert.Equal(["example.com", ".internal.test"], ca.PermittedDomains);
        Assert.Equal(Now.AddDays(30).UtcDateTime, ca.Certificate.NotAfter.ToUniversalTime());
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(dir.File("ca/ca.key")));
        }
    }

    [Fact]
    public async Task Init_Defaults_To365Days_AndNeverReplacesACa()
    {
        using var dir = new TempDir();
        var (code, stdout, stderr) = await CliAsync("ca", "init", "--out", dir.Path);
        Assert.True(code == 0, stderr);
        Assert.EndsWith("; it may sign for any name\n", stdout, StringComparison.Ordinal);
        using (var ca = CertificateAuthority.Load(dir.File("ca.crt"), dir.File("ca.key")))
        {
            Assert.InRange(ca.Certificate.NotAfter.ToUniversalTime() - DateTime.UtcNow, TimeSpan.FromDays(364), TimeSpan.FromDays(365));
        }

        var key = File.ReadAllText(dir.File("ca.key"));
        var again = await CliAsync("ca", "init", "--out", dir.Path);
        Assert.Equal(2, again.Code);
        Assert.Equal($"ca init: {dir.File("ca.key")}: already exists; ca init never replaces a CA\n", again.Stderr);
        Assert.Equal(key, File.ReadAllText(dir.File("ca.key")));
    }

    [Theory]
    [InlineData(new string[] { "ca" }, "ca: usage: chronoguard ca init --out DIR [--permit DOMAIN]... [--days N]")]
    [InlineData(new[] { "ca", "make" }, "ca: unknown subcommand 'make' (see chronoguard ca --help)")]
    [InlineData(new[] { "ca", "init" }, "ca init: --out DIR is required (usage: chronoguard ca init --out DIR [--permit DOMAIN]... [--days N])")]
    [InlineData(new[] { "ca", "init", "--out" }, "ca init: --out needs a value (usage: chronoguard ca init --out DIR [--permit DOMAIN]... [--days N])")]
    [InlineData(new[] { "ca", "init", "--out", "" }, "ca init: --out is empty (a directory is required)")]
    [InlineData(new[] { "ca", "init", "--out", "a", "--out", "b" }, "ca init: --out is given twice")]
    [InlineData(new[] { "ca", "init", "--out", "DIR", "--permit" }, "ca init: --permit needs a value (usage: chronoguard ca init --out DIR [--permit DOMAIN]... [--days N])")]
    [InlineData(new[] { "ca", "init", "--out", "DIR", "--frob", "x" }, "ca init: unexpected argument '--frob' (usage: chronoguard ca init --out DIR [--permit DOMAIN]... [--days N])")]
    [InlineData(new[] { "ca", "init", "--out", "DIR", "--days", "0" }, "ca init: --days '0' is not a whole number of days from 1 to 3650")]
    [InlineData(new[] { "ca", "init", "--out", "DIR", "--days", "3651" }, "ca init: --days '3651' is not a whole number of days from 1 to 3650")]
    [InlineData(new[] { "ca", "init", "--out", "DIR", "--days", "-5" }, "ca init: --days '-5' is not a whole number of days from 1 to 3650")]
    [InlineData(new[] { "ca", "init", "--out", "DIR", "--days", "1e3" }, "ca init: --days '1e3' is not a whole number of days from 1 to 3650")]
    [InlineData(new[] { "ca", "init", "--out", "DIR", "--permit", "a..com" }, "ca init: --permit 'a..com' is not a DNS name or *.suffix")]
    [InlineData(new[] { "ca", "init", "--out", "DIR", "--permit", "10.0.0.1" }, "ca init: --permit '10.0.0.1' is not a DNS name or *.suffix")]
    [InlineData(new[] { "ca", "init", "--out", "DIR", "--permit", "ok.com", "--permit", "*" }, "ca init: --permit '*' is not a DNS name or *.suffix")]
    public async Task UsageProblems_AreOneLine_Exit2_AndWriteNothing(string[] args, string expected)
    {
        using var dir = new TempDir();
        var resolved = args.Select(a => a == "DIR" ? dir.File("ca") : a).ToArray();
        var (code, stdout, stderr) = await CliAsync(resolved);
        Assert.Equal(2, code);
        Assert.Equal(string.Empty, stdout);
        Assert.Equal(expected + "\n", stderr);
        Assert.False(Directory.Exists(dir.File("ca")));
    }

    [Theory]
    [InlineData("ca", "--help")]
    [InlineData("ca", "-h")]
    [InlineData("ca", "init", "--help")]
    [InlineData("ca", "init", "--out", "x", "-h")]
    public async Task Help_PrintsTheUsageAndExits0(params string[] args)
    {
        var (code, stdout, stderr) = await CliAsync(args);
        Assert.Equal(0, code);
        Assert.Equal(string.Empty, stderr);
        Assert.StartsWith("usage: chronoguard ca init --out DIR [--permit DOMAIN]... [--days N]", stdout, StringComparison.Ordinal);
        Assert.Contains("--permit DOMAIN", stdout, StringComparison.Ordinal);
        Assert.False(Directory.Exists("x"));
    }

    [Fact]
    public async Task Init_IntoAPathBlockedByAFile_IsOneLineNamingIt()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("f"), "x");
        var (code, _, stderr) = await CliAsync("ca", "init", "--out", dir.File("f/ca"));
        Assert.Equal(2, code);
        Assert.StartsWith($"ca init: {dir.File("f/ca")}: cannot create the directory: ", stderr, StringComparison.Ordinal);
        Assert.Single(stderr.TrimEnd('\n').Split('\n'));
    }
}
