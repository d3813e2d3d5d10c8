using ChronoGuard.Audit;
using ChronoGuard.Sidecar.Cli;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Audit;

[Collection(RunAlone.Name)]
public sealed class AuditRetentionTests
{
    [Fact]
    public void Dropping_old_segments_leaves_a_chain_that_verifies_from_the_first_kept_record()
    {
        using var dir = new TempDir();
        var auditDir = dir.File("audit");
        // 1 MiB segments so a few thousand records span several.
        var options = new AuditOptions { Directory = auditDir, SegmentSizeBits = 20, RetainSegments = 2, QueueCapacity = 1024 };
        var dropped = new List<(long Seq, byte[] PrevHash)>();
        using (var writer = AuditWriter.Open(options, TimeProvider.System))
        {
            writer.OnRetention = (seq, prev) =>
            {
                lock (dropped)
                {
                    dropped.Add((seq, prev));
                }
            };
            for (var i = 0; i < 30_000; i++)
            {
                var r = default(AuditRecord);
                r.Set(AuditText.Host, $"host-{i}.example.org");
                r.Set(AuditText.Reason, "allowed");
                writer.Append(ref r);
            }
        }

        Assert.NotEmpty(dropped);
        var segments = Directory.GetFiles(auditDir, "audit.log.*");
        Assert.InRange(segments.Length, 1, 3);

        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = VerifyCommand.Run(["--audit-dir", auditDir], stdout, stderr);
        var output = stdout.ToString();
        Assert.True(code == 0, output + stderr);
        Assert.Matches(@"^valid: \d+ records, head 29999:[0-9a-f]{64} \(from seq [1-9]\d*: older segments were dropped; its prevHash is taken as the anchor\)", output);

        var first = AuditReader.ReadDirectory(auditDir).First().Entry!;
        Assert.True(first.Seq > 0);
        Assert.Contains(dropped, d => d.Seq == first.Seq && d.PrevHash.AsSpan().SequenceEqual(first.PrevHash));
    }

    [Fact]
    public void Without_retention_every_segment_is_kept_and_the_chain_starts_at_seq_0()
    {
        using var dir = new TempDir();
        var auditDir = dir.File("audit");
        using (var writer = AuditWriter.Open(new AuditOptions { Directory = auditDir, SegmentSizeBits = 20 }, TimeProvider.System))
        {
            for (var i = 0; i < 12_000; i++)
            {
                var r = default(AuditRecord);
                r.Set(AuditText.Host, $"host-{i}.example.org");
                writer.Append(ref r);
            }
        }

        Assert.True(Directory.GetFiles(auditDir, "audit.log.*").Length >= 2);
        var stdout = new StringWriter();
        Assert.Equal(0, VerifyCommand.Run(["--audit-dir", auditDir], stdout, new StringWriter()));
        Assert.StartsWith("valid: 12000 records, head 11999:", stdout.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("anchor", stdout.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void An_operator_can_delete_the_oldest_segment_file_by_hand_and_the_writer_and_verify_go_on_from_the_rest()
    {
        using var dir = new TempDir();
        var auditDir = dir.File("audit");
        var options = new AuditOptions { Directory = auditDir, SegmentSizeBits = 20 };
        void Write(int count)
        {
            using var writer = AuditWriter.Open(options, TimeProvider.System);
            for (var i = 0; i < count; i++)
            {
                var r = default(AuditRecord);
                r.Set(AuditText.Host, $"host-{i}.example.org");
                writer.Append(ref r);
            }
        }

        Write(12_000);
        File.Delete(Path.Combine(auditDir, "audit.log.0"));
        Write(10);

        var stdout = new StringWriter();
        var stderr = new StringWriter();
        Assert.True(VerifyCommand.Run(["--audit-dir", auditDir], stdout, stderr) == 0, stdout.ToString() + stderr);
        Assert.Matches(@"^valid: \d+ records, head 12009:[0-9a-f]{64} \(from seq [1-9]\d*: older segments were dropped", stdout.ToString());
    }
}
