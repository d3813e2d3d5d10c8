using ChronoGuard.Sidecar.Cli;
using ChronoGuard.Tests.Audit;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Cli;

/// <summary>
/// Every I/O failure of every command is one line in our words naming the file, and exit 2. These run on
/// the JIT, where the runtime's messages are sentences; the published NativeAOT binary has only their
/// resource keys, so each expected line is exact: a line built from the runtime's message would differ.
/// </summary>
public sealed class ReadableErrorTests
{
    private static TempDir Fixture()
    {
        var dir = new TempDir();
        File.WriteAllLines(dir.File("export.jsonl"), AuditTestData.WriteAndExport(dir, 3));
        File.WriteAllText(dir.File("afile"), "not a key\n");
        return dir;
    }

    private static async Task<(int Code, string Stdout, string Stderr)> RunAsync(string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = await CommandLine.RunAsync(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    [Theory]
    [InlineData("export --audit-dir {d}/audit --out {d}/missing/x.jsonl", "export: {d}/missing/x.jsonl: the directory {d}/missing does not exist")]
    [InlineData("export --audit-dir {d}/audit --out {d}/afile/x.jsonl", "export: {d}/afile/x.jsonl: {d}/afile is a file, not a directory")]
    [InlineData("export --audit-dir {d}/audit --out {d}", "export: {d}: is a directory, not a file")]
    [InlineData("export --audit-dir {d}/missing", "export: {d}/missing: the directory {d}/missing does not exist")]
    [InlineData("export --audit-dir {d}/audit --format csv --out {d}/missing/x.csv", "export: {d}/missing/x.csv: the directory {d}/missing does not exist")]
    [InlineData("verify --jsonl {d}", "verify: {d}: is a directory, not a file")]
    [InlineData("verify --csv {d}/missing.csv", "verify: {d}/missing.csv: no such file")]
    [InlineData("verify --jsonl {d}/export.jsonl --key-file {d}", "verify: {d}: is a directory, not a file")]
    [InlineData("verify --audit-dir {d}/afile", "verify: {d}/afile: is a file, not an audit directory")]
    [InlineData("verify --audit-dir {d}/missing", "verify: {d}/missing: no such directory")]
    [InlineData("verify --jsonl {d}/export.jsonl --checkpoints {d}/export.jsonl --public-key {d}/afile", "verify: {d}/afile: not a PEM ECDSA P-256 public key (chronoguard audit keygen makes one)")]
    [InlineData("audit keygen --out {d}/afile/sub", "audit keygen: {d}/afile/sub: cannot create the directory: {d}/afile is a file, not a directory")]
    [InlineData("audit repair --audit-dir {d}/missing", "audit repair: {d}/missing: no such audit directory")]
    [InlineData("policy check {d}", "{d}: is a directory, not a file")]
    [InlineData("policy check {d}/missing.json", "{d}/missing.json: file not found")]
    [InlineData("run --config {d}", "{d}: is a directory, not a config file")]
    [InlineData("run --config {d}/missing.json", "{d}/missing.json: config file not found")]
    public async Task An_io_failure_of_any_command_is_one_line_naming_the_file_and_exit_2(string command, string expected)
    {
        using var dir = Fixture();
        var args = command.Replace("{d}", dir.Path, StringComparison.Ordinal).Split(' ');

        var (code, stdout, stderr) = await RunAsync(args);

        Assert.Equal(string.Empty, stdout);
        Assert.Equal(expected.Replace("{d}", dir.Path, StringComparison.Ordinal), stderr.TrimEnd('\n'));
        Assert.Equal(2, code);
    }

    [Theory]
    [InlineData("{ \"Proxy\": {\n  \"Listen\": x } }", "{f}: line 2, column 13: not valid JSON: unexpected character 'x'")]
    [InlineData("{ \"Proxy\": { \"Listen\": \"127.0.0.1:0\" }", "{f}: line 1, column 39: the file ends before every object and array is closed")]
    [InlineData("{ \"Proxy\": { \"Listen\": \"127.0.0.1:0 } }", "{f}: line 1, column 40: the file ends inside a string")]
    [InlineData("{\n \"Proxy\": { \"Listen\": \"127.0.0.1:0\",\n  \"listen\": \"127.0.0.1:1\" } }", "{f}: line 3: Proxy:listen is given twice (keys ignore case)")]
    [InlineData("", "{f}: the file is empty (give { } for no settings)")]
    [InlineData("  // nothing\n", "{f}: the file is empty (give { } for no settings)")]
    [InlineData("[ 1 ]", "{f}: line 1: must be a JSON object of settings")]
    [InlineData("{ \"Audit\": { \"HmacKeyFile\": \"{d}\" } }", "Audit:HmacKeyFile {d}: cannot read the key file: is a directory, not a file")]
    [InlineData("{ \"Audit\": { \"HmacKeyFile\": \"{d}/missing.key\" } }", "Audit:HmacKeyFile {d}/missing.key: cannot read the key file: no such file")]
    [InlineData("{ \"Audit\": { \"SigningKeyFile\": \"{d}/afile\" } }", "Audit:SigningKeyFile {d}/afile: not a PEM ECDSA P-256 private key (chronoguard audit keygen makes one)")]
    [InlineData("{ \"Audit\": { \"Directory\": \"{d}/afile/audit\" } }", "Audit:Directory {d}/afile/audit: cannot create the directory: {d}/afile is a file, not a directory")]
    [InlineData("{ \"Policy\": { \"Path\": \"{d}/missing.json\" } }", "{d}/missing.json: cannot read the file: no such file")]
    [InlineData("{ \"Policy\": { \"Path\": \"{d}\" } }", "{d}: cannot read the file: is a directory, not a file")]
    public async Task A_start_that_fails_on_a_file_says_which_file_and_what_in_one_line(string config, string expected)
    {
        using var dir = Fixture();
        var file = dir.File("cg.json");
        File.WriteAllText(file, config.Replace("{d}", dir.Path, StringComparison.Ordinal));
        var stderr = new StringWriter();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        string[] args = config.Contains("\"Directory\"", StringComparison.Ordinal)
            ? ["--config", file, "--listen", "127.0.0.1:0", "--stats", "127.0.0.1:0"]
            : ["--config", file, "--listen", "127.0.0.1:0", "--stats", "127.0.0.1:0", "--audit-dir", dir.File("audit-run")];

        var code = await RunCommand.RunAsync(args, stderr, stop.Token);

        Assert.Equal(expected.Replace("{f}", file, StringComparison.Ordinal).Replace("{d}", dir.Path, StringComparison.Ordinal), stderr.ToString().TrimEnd('\n'));
        Assert.Equal(2, code);
    }

    /// <summary>
    /// The words come from the exception's type and errno, never its message: given the runtime's real
    /// exceptions (JIT, sentences) and the same with NativeAOT's resource-key messages, the line is the same.
    /// </summary>
    [Fact]
    public void The_line_for_a_runtime_io_exception_never_carries_its_message()
    {
        using var dir = Fixture();
        var missing = dir.File("missing/x");
        var real = new List<(Exception Ex, string Path)>();
        void Capture(string path, Action action)
        {
            try
            {
                action();
                Assert.Fail($"{path}: no exception");
            }
            catch (Exception ex)
            {
                real.Add((ex, path));
            }
        }

        Capture(missing, () => File.WriteAllText(missing, "x"));
        Capture(dir.File("missing.txt"), () => File.ReadAllBytes(dir.File("missing.txt")));
        Capture(dir.Path, () => File.ReadAllBytes(dir.Path));
        Capture(dir.Path, () => File.WriteAllText(dir.Path, "x"));
        Capture(dir.File("afile/x"), () => File.WriteAllText(dir.File("afile/x"), "x"));
        Capture(dir.File("afile"), () => new FileStream(dir.File("afile"), FileMode.CreateNew).Dispose());
        foreach (var (ex, path) in real)
        {
            var line = ChronoGuard.IoErrors.Line(path, ex);
            Assert.StartsWith(path + ": ", line, StringComparison.Ordinal);
            Assert.DoesNotContain(ex.Message, line, StringComparison.Ordinal);
            Assert.DoesNotContain("'", line, StringComparison.Ordinal);

            // The same exception as NativeAOT builds it: its message is the resource key and the path.
            var aot = (Exception)Activator.CreateInstance(ex.GetType(), "IO_Something_Path, " + path)!;
            aot.HResult = ex.HResult;
            Assert.Equal(line, ChronoGuard.IoErrors.Line(path, aot));
            Assert.False(ChronoGuard.IoErrors.IsOwn(aot));
        }

        Assert.Equal(
            [$"{missing}: the directory {dir.File("missing")} does not exist", $"{dir.File("missing.txt")}: no such file", $"{dir.Path}: is a directory, not a file",
             $"{dir.Path}: is a directory, not a file", $"{dir.File("afile/x")}: {dir.File("afile")} is a file, not a directory", $"{dir.File("afile")}: already exists"],
            real.Select(r => ChronoGuard.IoErrors.Line(r.Path, r.Ex)));

        // A message our own code composed is kept as it is.
        Assert.Equal("x: no such audit directory", ChronoGuard.IoErrors.Line("x", new IOException("x: no such audit directory")));
        Assert.Equal("run: failed with an unexpected InvalidCastException; please report it", CommandLine.Unexpected("run", new InvalidCastException("InvalidCast_FromTo")));
    }

    [Fact]
    public async Task A_start_up_failure_of_the_real_binary_is_one_line_on_stderr_and_nothing_on_stdout()
    {
        using var dir = Fixture();
        File.WriteAllText(dir.File("bad.json"), "{ \"Proxy\": {\n  \"Listen\": x } }");
        var cases = new (string[] Args, string Expected)[]
        {
            (["--policy", dir.File("missing.json")], $"{dir.File("missing.json")}: cannot read the file: no such file"),
            (["--policy", dir.File("bad.json")], $"{dir.File("bad.json")}: line 2, column 13: not valid JSON: unexpected character 'x'"),
            (["--config", dir.File("bad.json")], $"{dir.File("bad.json")}: line 2, column 13: not valid JSON: unexpected character 'x'"),
            (["--audit-dir", dir.File("afile/audit")], $"Audit:Directory {dir.File("afile/audit")}: cannot create the directory: {dir.File("afile")} is a file, not a directory"),
        };
        foreach (var (args, expected) in cases)
        {
            var run = await Support.SidecarRun.RunAsync(dir.Path, ["run", "--listen", "127.0.0.1:0", "--stats", "127.0.0.1:0", "--audit-dir", dir.File("audit-run"), .. args]);

            Assert.Equal(expected, run.Stderr.TrimEnd('\n'));
            Assert.Equal(string.Empty, run.Stdout);
            Assert.Equal(2, run.ExitCode);
        }
    }
}
