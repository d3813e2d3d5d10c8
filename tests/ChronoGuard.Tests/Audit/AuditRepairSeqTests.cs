using ChronoGuard.Audit;
using ChronoGuard.Sidecar.Cli;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Audit;

/// <summary>
/// After a repair the chain goes on above every seq handed out before the damage (SPEC §5): no seq a
/// checkpoint signed is given to another record, and verify --checkpoints proves the part before the
/// damage and names the lost range (exit 1) instead of failing for good.
/// </summary>
[Collection(RunAlone.Name)]
public sealed class AuditRepairSeqTests
{
    private static (int Code, string Output) Verify(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = VerifyCommand.Run(args, stdout, stderr);
        return (code, stdout.ToString() + stderr);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task After_repair_seqs_continue_above_every_signed_seq_and_checkpoints_prove_the_part_before_the_damage(bool keepHeadFile)
    {
        using var dir = new TempDir();
        var keys = dir.File("keys");
        Assert.Equal(0, AuditKeygenCommand.Run(["--out", keys], new StringWriter(), new StringWriter()));
        var publicKey = Path.Combine(keys, AuditKeygenCommand.PublicFile);
        var auditDir = dir.File("audit");
        var options = new AuditOptions
        {
            Directory = auditDir,
            SegmentSizeBits = 20,
            QueueCapacity = 1024,
            SigningKeyFile = Path.Combine(keys, AuditKeygenCommand.PrivateFile),
            CheckpointIntervalMs = 3_600_000,
        };

        // Two runs, each signing a checkpoint at its stop: one before the damage, one after it.
        foreach (var (count, copy) in new[] { (3000, "early.jsonl"), (5000, "all.jsonl") })
        {
            using (var writer = AuditWriter.Open(options, TimeProvider.System))
            {
                AuditTestData.AppendDecisions(writer, count);
            }

            File.Copy(Path.Combine(auditDir, Checkpoint.FileName), dir.File(copy));
        }

        // Cut the log at seq 6000: seqs 6000 to 7999 were handed out, committed and signed.
        var entries = new AuditLogScan(auditDir).Entries().ToList();
        Assert.Equal(8000, entries.Count);
        var cutAt = entries[6000].Address / 512 * 512;
        using (var f = new FileStream(Path.Combine(auditDir, $"audit.log.{cutAt >> 20}"), FileMode.Open))
        {
            f.SetLength(cutAt & ((1 << 20) - 1));
        }

        if (!keepHeadFile)
        {
            // Then only the checkpoints kept in the directory know how far the seqs went.
            File.Delete(Path.Combine(auditDir, AuditHeadMarker.FileName));
        }

        var lastGood = AuditLogScan.Run(auditDir).Damage!.LastGoodSeq;
        Assert.InRange(lastGood, 5900, 5999);
        Assert.Equal(0, await CommandLine.RunAsync(["audit", "repair", "--audit-dir", auditDir], new StringWriter(), new StringWriter()));
        using (var writer = AuditWriter.Open(options, TimeProvider.System))
        {
            AuditTestData.AppendDecisions(writer, 10, prefix: "after");
        }

        var records = AuditReader.ReadDirectory(auditDir).Select(i => i.Entry!).ToList();
        // The gap is named by the one kind of record that names any gap (reason=lost), the repair record follows.
        var lost = records.Single(e => e.Reason == "lost");
        Assert.Equal(8000, lost.Seq);
        Assert.StartsWith($"seqs {lastGood + 1}..7999: audit repair", lost.Path, StringComparison.Ordinal);
        var repair = records.Single(e => e.Reason == "repair");
        Assert.Equal(8001, repair.Seq);
        Assert.Contains($"lost seq {lastGood + 1} to 7999;", repair.Path, StringComparison.Ordinal);
        Assert.DoesNotContain(records, e => e.Seq > lastGood && e.Seq < 8000);
        Assert.Equal(lastGood + 1 + 2 + 10, records.Count); // kept, the lost and repair records, 10 new

        var (code, output) = Verify("--audit-dir", auditDir);
        Assert.True(code == 0, output);
        Assert.Contains($"(seq {lastGood + 1} to 7999 lost, named by the record at seq 8000)", output, StringComparison.Ordinal);

        // The checkpoint before the damage is proven; the one in the lost range is named, exit 1.
        (code, output) = Verify("--audit-dir", auditDir, "--checkpoints", dir.File("early.jsonl"), "--public-key", publicKey);
        Assert.True(code == 0, output);
        (code, output) = Verify("--audit-dir", auditDir, "--checkpoints", dir.File("all.jsonl"), "--public-key", publicKey);
        Assert.True(code == 1, output);
        Assert.Contains($"is in seq {lastGood + 1} to 7999, which the record at seq 8000 names as lost: the log is proven up to seq {lastGood}", output, StringComparison.Ordinal);
        Assert.DoesNotContain("truncation", output, StringComparison.Ordinal);
        Assert.DoesNotContain("rewritten", output, StringComparison.Ordinal);
    }
}
