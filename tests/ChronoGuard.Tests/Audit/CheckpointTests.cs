using System.Diagnostics;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using ChronoGuard.Sidecar.Cli;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Audit;

/// <summary>
/// Signed checkpoints made by the real binary: keygen, signing while running and at stop, /audit/head and
/// the head gauge, and verify proving the log reaches the newest checkpoint (truncation and a rewritten
/// unkeyed chain found without a hand-kept head).
/// </summary>
public sealed class CheckpointTests
{
    private static (int Code, string Output) Cli(Func<TextWriter, TextWriter, int> run)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = run(stdout, stderr);
        return (code, stdout.ToString() + stderr);
    }

    [Fact]
    public void Keygen_writes_a_p256_pair_with_a_private_key_only_its_owner_can_read_and_never_replaces_one()
    {
        using var dir = new TempDir();
        var keys = dir.File("keys");
        var (code, output) = Cli((o, e) => AuditKeygenCommand.Run(["--out", keys], o, e));
        Assert.True(code == 0, output);
        var priv = Path.Combine(keys, AuditKeygenCommand.PrivateFile);
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(priv));
        }

        using var key = ECDsa.Create();
        key.ImportFromPem(File.ReadAllText(priv));
        Assert.Equal(256, key.KeySize);

        var again = Cli((o, e) => AuditKeygenCommand.Run(["--out", keys], o, e));
        Assert.Equal(2, again.Code);
        Assert.Contains("already exists", again.Output, StringComparison.Ordinal);
        Assert.Equal(2, Cli((o, e) => AuditKeygenCommand.Run([], o, e)).Code);
    }

    [Fact]
    public async Task The_sidecar_signs_checkpoints_and_verify_proves_the_log_reaches_the_newest_one()
    {
        using var dir = new TempDir();
        var keys = dir.File("keys");
        Assert.Equal(0, Cli((o, e) => AuditKeygenCommand.Run(["--out", keys], o, e)).Code);
        var publicKey = Path.Combine(keys, AuditKeygenCommand.PublicFile);
        var audit = dir.File("audit");
        var checkpoints = Path.Combine(audit, "checkpoints.jsonl");
        using var http = new HttpClient();
        await using (var sidecar = await SidecarProcess.StartAsync(dir.Path, environment: new Dictionary<string, string>
        {
            ["CHRONOGUARD__Audit__SigningKeyFile"] = Path.Combine(keys, AuditKeygenCommand.PrivateFile),
            ["CHRONOGUARD__Audit__CheckpointIntervalMs"] = "50",
        }))
        {
            // Traffic until two checkpoints were signed while running, and at least 8 requests: the
            // rewrite below starts at seq 3 and the truncation drops two records, which a loaded machine
            // (two checkpoints signed before the second request) left too few records for.
            var deadline = Stopwatch.StartNew();
            for (var sent = 0; sent < 8 || !File.Exists(checkpoints) || File.ReadAllLines(checkpoints).Length < 2; sent++)
            {
                Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(60), "no checkpoints while running:\n" + sidecar.Output);
                using var client = await RawClient.ConnectAsync(sidecar.ProxyEndPoint);
                await client.SendAsync("GET http://127.0.0.1:1/x HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n");
                await client.ReadHeadAsync();
            }

            using var head = JsonDocument.Parse(await http.GetStringAsync($"http://{sidecar.StatsEndPoint}/audit/head"));
            var cp = head.RootElement.GetProperty("checkpoint");
            Assert.Equal(64, cp.GetProperty("hash").GetString()!.Length);
            Assert.True(cp.GetProperty("seq").GetInt64() <= head.RootElement.GetProperty("seq").GetInt64());
            var metrics = await http.GetStringAsync($"http://{sidecar.StatsEndPoint}/metrics");
            Assert.Matches(@"(?m)^chronoguard_audit_head_seq \d+$", metrics);
            Assert.Contains("# TYPE chronoguard_audit_head_seq gauge", metrics, StringComparison.Ordinal);

            sidecar.Signal("TERM");
            Assert.Equal(0, await sidecar.WaitForExitAsync(TimeSpan.FromSeconds(30)));
            // Each checkpoint is also one log line, for a log pipeline the node cannot rewrite.
            Assert.Contains("audit checkpoint seq ", sidecar.Output, StringComparison.Ordinal);
        }

        // The stop checkpoint names the final head (the stop record).
        var lines = File.ReadAllLines(checkpoints);
        var verified = Cli((o, e) => VerifyCommand.Run(["--audit-dir", audit], o, e));
        Assert.Equal(0, verified.Code);
        var finalHead = verified.Output.Split(' ')[4].Trim();
        using (var last = JsonDocument.Parse(lines[^1]))
        {
            Assert.Equal(finalHead, $"{last.RootElement.GetProperty("seq").GetInt64()}:{last.RootElement.GetProperty("hash").GetString()}");
        }

        var proven = Cli((o, e) => VerifyCommand.Run(["--audit-dir", audit, "--checkpoints", checkpoints, "--public-key", publicKey], o, e));
        Assert.True(proven.Code == 0, proven.Output);
        Assert.Contains($"reaches the newest of {lines.Length} signed checkpoints", proven.Output, StringComparison.Ordinal);

        // A truncated export: valid on its own, caught by the checkpoint.
        var export = dir.File("export.jsonl");
        Assert.Equal(0, Cli((o, e) => ExportCommand.Run(["--audit-dir", audit, "--out", export], o, e)).Code);
        var records = File.ReadAllLines(export);
        var truncated = dir.File("truncated.jsonl");
        File.WriteAllLines(truncated, records[..^2]);
        Assert.Equal(0, Cli((o, e) => VerifyCommand.Run(["--jsonl", truncated], o, e)).Code);
        var t = Cli((o, e) => VerifyCommand.Run(["--jsonl", truncated, "--checkpoints", checkpoints, "--public-key", publicKey], o, e));
        Assert.Equal(1, t.Code);
        Assert.Contains("truncation: the chain ends at seq", t.Output, StringComparison.Ordinal);

        // The unkeyed chain rewritten from seq 3 on, every hash recomputed: valid alone, caught by the checkpoints.
        var rewritten = dir.File("rewritten.jsonl");
        File.WriteAllLines(rewritten, Rewrite(records, 3));
        Assert.Equal(0, Cli((o, e) => VerifyCommand.Run(["--jsonl", rewritten], o, e)).Code);
        var r = Cli((o, e) => VerifyCommand.Run(["--jsonl", rewritten, "--checkpoints", checkpoints, "--public-key", publicKey], o, e));
        Assert.Equal(1, r.Code);
        Assert.Contains("hash differs from signed checkpoint", r.Output, StringComparison.Ordinal);

        // A forged line (no key) is rejected and said so; a file of only forgeries proves nothing.
        var forged = dir.File("forged.jsonl");
        var forgedLine = Regex.Replace(lines[^1], "\"seq\":\\d+", "\"seq\":999999");
        File.WriteAllLines(forged, [.. lines, forgedLine]);
        var f = Cli((o, e) => VerifyCommand.Run(["--audit-dir", audit, "--checkpoints", forged, "--public-key", publicKey], o, e));
        Assert.True(f.Code == 0, f.Output);
        Assert.Contains("1 lines rejected (first: line " + (lines.Length + 1) + ": the signature does not verify", f.Output, StringComparison.Ordinal);
        File.WriteAllLines(forged, [forgedLine]);
        Assert.Equal(1, Cli((o, e) => VerifyCommand.Run(["--audit-dir", audit, "--checkpoints", forged, "--public-key", publicKey], o, e)).Code);

        // Another key's public half verifies none of them.
        var other = dir.File("other");
        Assert.Equal(0, Cli((o, e) => AuditKeygenCommand.Run(["--out", other], o, e)).Code);
        var wrongKey = Cli((o, e) => VerifyCommand.Run(["--audit-dir", audit, "--checkpoints", checkpoints, "--public-key", Path.Combine(other, AuditKeygenCommand.PublicFile)], o, e));
        Assert.Equal(1, wrongKey.Code);
        Assert.Contains("no checkpoint signed by", wrongKey.Output, StringComparison.Ordinal);
    }

    /// <summary>What someone with write access and no HMAC key can do: change a record and re-chain everything after it.</summary>
    private static string[] Rewrite(string[] lines, int from)
    {
        var result = (string[])lines.Clone();
        var prev = Regex.Match(lines[from], "\"prevHash\":\"([0-9a-f]{64})\"").Groups[1].Value;
        for (var i = from; i < lines.Length; i++)
        {
            var line = Regex.Replace(result[i], "\"prevHash\":\"[0-9a-f]{64}\"", $"\"prevHash\":\"{prev}\"");
            if (i == from)
            {
                line = Regex.Replace(line, "\"reason\":\"[^\"]*\"", "\"reason\":\"rewritten\"");
            }

            var entry = ChronoGuard.Audit.AuditJson.Parse(line, out var problem, out _) ?? throw new InvalidDataException(problem);
            var hash = Convert.ToHexStringLower(SHA256.HashData([.. Convert.FromHexString(prev), .. ChronoGuard.Audit.AuditCodec.Encode(entry)]));
            result[i] = Regex.Replace(line, "\"hash\":\"[0-9a-f]{64}\"", $"\"hash\":\"{hash}\"");
            prev = hash;
        }

        return result;
    }
}
