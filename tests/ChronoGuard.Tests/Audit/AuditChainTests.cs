using System.Text.Json.Nodes;
using ChronoGuard.Audit;
using ChronoGuard.Sidecar.Cli;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Audit;

public sealed class AuditChainTests
{
    private static (int Code, string Output) Verify(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = VerifyCommand.Run(args, stdout, stderr);
        return (code, stdout.ToString() + stderr.ToString());
    }

    private static string WriteLines(TempDir dir, IEnumerable<string> lines, string name = "export.jsonl")
    {
        File.WriteAllLines(dir.File(name), lines);
        return dir.File(name);
    }

    [Fact]
    public void A_written_log_verifies_from_the_directory_and_from_its_export()
    {
        using var dir = new TempDir();
        var lines = AuditTestData.WriteAndExport(dir, 50);

        var fromDir = Verify("--audit-dir", dir.File("audit"));
        var fromJsonl = Verify("--jsonl", WriteLines(dir, lines));

        Assert.Equal(0, fromDir.Code);
        Assert.StartsWith("valid: 50 records, head 49:", fromDir.Output, StringComparison.Ordinal);
        Assert.Equal(fromDir.Output, fromJsonl.Output);
    }

    [Theory]
    [InlineData("agent", "bot-x")]
    [InlineData("host", "evil.example")]
    [InlineData("path", "/other")]
    [InlineData("decision", "ALLOW")]
    [InlineData("status", 200)]
    [InlineData("bytesUp", 1)]
    [InlineData("ts", 1)]
    [InlineData("kind", "close")]
    [InlineData("hash", "00")]
    [InlineData("prevHash", "00")]
    public void Tampering_with_any_field_is_found_at_its_seq(string field, object value)
    {
        using var dir = new TempDir();
        var lines = AuditTestData.WriteAndExport(dir, 30);
        var node = JsonNode.Parse(lines[17])!;
        node[field] = value switch
        {
            int i => i + (node[field]!.GetValueKind() == System.Text.Json.JsonValueKind.Number ? node[field]!.GetValue<long>() : 0) + 7,
            "00" => new string('0', 63) + "1",
            string s => s == node[field]!.GetValue<string>() ? s + "x" : s,
            _ => throw new InvalidOperationException(),
        };
        lines[17] = node.ToJsonString();

        var (code, output) = Verify("--jsonl", WriteLines(dir, lines));

        Assert.Equal(1, code);
        Assert.StartsWith("invalid: seq 17:", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Gap_reorder_and_truncation_are_named()
    {
        using var dir = new TempDir();
        var lines = AuditTestData.WriteAndExport(dir, 20);
        var head = Verify("--jsonl", WriteLines(dir, lines)).Output.Split(' ')[4].Trim();

        var gap = lines.Where((_, i) => i != 8).ToList();
        Assert.Contains("invalid: seq 8: line 9: missing: the next record is seq 9 (a gap of 1)", Verify("--jsonl", WriteLines(dir, gap)).Output, StringComparison.Ordinal);

        var reordered = lines.ToList();
        (reordered[5], reordered[6]) = (reordered[6], reordered[5]);
        Assert.Contains("invalid: seq 5: line 6: missing: the next record is seq 6", Verify("--jsonl", WriteLines(dir, reordered)).Output, StringComparison.Ordinal);
        var backwards = lines.Take(7).Append(lines[3]).ToList();
        Assert.Contains("invalid: seq 7: line 8: seq 3 appears where seq 7 belongs (a duplicate or reordered record)", Verify("--jsonl", WriteLines(dir, backwards)).Output, StringComparison.Ordinal);

        var truncated = Verify("--jsonl", WriteLines(dir, lines.Take(15)), "--expect-head", head);
        Assert.Equal(1, truncated.Code);
        Assert.Contains("invalid: seq 15: truncation: the chain ends at seq 14, --expect-head is at seq 19", truncated.Output, StringComparison.Ordinal);
        Assert.Equal(0, Verify("--jsonl", WriteLines(dir, lines), "--expect-head", head).Code);
    }

    [Fact]
    public void Hmac_chain_needs_the_right_key()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("key"), "the right key");
        File.WriteAllText(dir.File("wrong"), "another key");
        AuditTestData.WriteAndExport(dir, 10, keyFile: dir.File("key"));

        Assert.Equal(0, Verify("--audit-dir", dir.File("audit"), "--key-file", dir.File("key")).Code);
        var wrong = Verify("--audit-dir", dir.File("audit"), "--key-file", dir.File("wrong"));
        Assert.Equal(1, wrong.Code);
        Assert.StartsWith("invalid: seq 0: log address 64: hash mismatch (record altered, or wrong key)", wrong.Output, StringComparison.Ordinal);
        Assert.Equal(1, Verify("--audit-dir", dir.File("audit")).Code);
    }

    [Fact]
    public void Reopening_continues_the_chain_from_the_recovered_head()
    {
        using var dir = new TempDir();
        AuditTestData.WriteAndExport(dir, 10);
        AuditTestData.WriteAndExport(dir, 5);

        var (code, output) = Verify("--audit-dir", dir.File("audit"));
        Assert.Equal(0, code);
        Assert.StartsWith("valid: 15 records, head 14:", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Commit_before_forward_waits_until_the_record_is_durable()
    {
        using var dir = new TempDir();
        using var writer = AuditWriter.Open(new AuditOptions { Directory = dir.File("audit"), Durability = "commit-before-forward" }, TimeProvider.System);
        var r = default(AuditRecord);
        r.Set(AuditText.Reason, "test");
        var seq = writer.Append(ref r);

        await writer.WaitDurableAsync(seq).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(writer.CommittedSeq >= seq);
        Assert.Equal(seq, writer.Head.Seq);
    }

    [Fact]
    public void The_worked_example_in_the_docs_hashes_as_documented()
    {
        var record = default(AuditRecord);
        record.Seq = 0;
        record.TimestampNs = 1795348800000000000;
        record.Kind = AuditKind.Decision;
        record.Set(AuditText.Agent, "research-bot");
        record.Set(AuditText.SourceIp, "127.0.0.1");
        record.Set(AuditText.Method, "CONNECT");
        // The page's format 2 example, filled as the gate fills a ring slot.
        record.Set(AuditText.Host, "api.example.com");
        record.Set(AuditText.Decision, "BLOCK");
        record.Set(AuditText.Reason, "private_destination");
        record.Set(AuditText.Policy, "research");
        record.Set(AuditText.DialedIp, "10.0.0.7");
        record.Enforced = false;
        record.Identity = AuditIdentity.Credential;
        record.Port = 443;
        record.Status = 200;
        record.ConnectionId = 1;
        var canonical = new byte[AuditCodec.MaxCanonicalBytes];
        var n = AuditCodec.Encode(record, canonical);
        var hash = new byte[32];
        using var chain = new AuditChain(null);
        chain.Compute(new byte[32], canonical.AsSpan(0, n), hash);

        var doc = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "../../../../../docs/audit-format.md"));
        Assert.Equal(163, n);
        Assert.Contains("hash = " + Convert.ToHexStringLower(hash), doc, StringComparison.Ordinal);
        Assert.StartsWith("020000000000000000", Convert.ToHexStringLower(canonical.AsSpan(0, n)), StringComparison.Ordinal);
    }
}
