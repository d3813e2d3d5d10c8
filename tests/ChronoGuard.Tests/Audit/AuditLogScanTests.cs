using System.Globalization;
using System.Text.RegularExpressions;
using ChronoGuard.Audit;
using ChronoGuard.Sidecar.Cli;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Audit;

/// <summary>
/// The one damage scan: the writer's start, verify and export read a directory the same way, so each
/// shape of damage is refused at start and reported by verify and export at the same place, with the
/// same last good seq; and nothing is called damage that is not (a new directory, a running writer).
/// </summary>
[Collection(RunAlone.Name)]
public sealed partial class AuditLogScanTests
{
    private static AuditWriter Open(string auditDir, int bits = 26) =>
        AuditWriter.Open(new AuditOptions { Directory = auditDir, QueueCapacity = 1024, SegmentSizeBits = bits }, TimeProvider.System);

    private static (int Code, string Output) Verify(string auditDir)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = VerifyCommand.Run(["--audit-dir", auditDir], stdout, stderr);
        return (code, stdout.ToString() + stderr);
    }

    private static (int Code, string Stdout, string Stderr) Export(string auditDir, bool salvage = false)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = ExportCommand.Run(salvage ? ["--audit-dir", auditDir, "--salvage"] : ["--audit-dir", auditDir], stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    private static string Refusal(string auditDir)
    {
        var ex = Assert.Throws<InvalidDataException>(() => Open(auditDir).Dispose());
        Assert.Contains("the audit log is damaged", ex.Message, StringComparison.Ordinal);
        Assert.Contains("refusing to append over committed records", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', ex.Message);
        return ex.Message;
    }

    /// <summary>
    /// ~3.5 MB in 1 MiB segments: several 512 KiB pages per segment, and a commit forced after every
    /// 1,000 records, so each segment holds FASTER commit records between records.
    /// </summary>
    private static string WriteLargeLog(TempDir dir)
    {
        var auditDir = dir.File("audit");
        using var writer = Open(auditDir, bits: 20);
        AuditTestData.AppendDecisions(writer, 16_000, commitEvery: 1000);
        return auditDir;
    }

    /// <summary>The writer's refusal and verify name the same last good seq and the same place.</summary>
    private static void AssertSamePlace(string auditDir, string place)
    {
        var scan = AuditLogScan.Run(auditDir);
        var damage = Assert.IsType<LogDamage>(scan.Damage);
        var refusal = Refusal(auditDir);
        var (code, output) = Verify(auditDir);
        Assert.True(code == 1, output);
        Assert.Contains(place, refusal, StringComparison.Ordinal);
        Assert.Contains(place, output, StringComparison.Ordinal);
        Assert.Contains($"the last good record is seq {damage.LastGoodSeq},", refusal, StringComparison.Ordinal);
        var lastGood = LastGood().Match(output);
        Assert.True(lastGood.Success, output);
        Assert.Equal(damage.LastGoodSeq, long.Parse(lastGood.Groups[1].Value, CultureInfo.InvariantCulture));
        var export = Export(auditDir);
        Assert.Equal(1, export.Code);
        Assert.Contains(place, export.Stderr, StringComparison.Ordinal);
        Assert.Equal(damage.LastGoodSeq + 1, export.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    [Fact]
    public void Verify_and_export_of_a_directory_that_is_not_an_audit_directory_are_exit_2()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("empty"));
        var (code, output) = Verify(dir.File("empty"));
        Assert.Equal(2, code);
        Assert.Contains("not an audit directory", output, StringComparison.Ordinal);
        Assert.Equal(2, Export(dir.File("empty")).Code);
    }

    [Fact]
    public void A_new_directory_and_one_whose_first_commit_is_not_written_yet_are_empty_logs_not_damage()
    {
        using var dir = new TempDir();
        var auditDir = dir.File("audit");
        Directory.CreateDirectory(auditDir);
        Assert.Null(AuditLogScan.Run(auditDir, requireLog: false, exclusive: true).Damage);
        Directory.CreateDirectory(Path.Combine(auditDir, "log-commits"));
        File.WriteAllBytes(Path.Combine(auditDir, "audit.log.0"), []);
        var scan = AuditLogScan.Run(auditDir);
        Assert.Null(scan.Damage);
        Assert.Equal(0, scan.Records);
        Assert.Equal(0, Verify(auditDir).Code);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Segments_without_commit_metadata_are_refused_at_start_and_never_valid(bool deleteFolder)
    {
        using var dir = new TempDir();
        AuditTestData.WriteAndExport(dir, 60);
        var auditDir = dir.File("audit");
        var commits = Path.Combine(auditDir, "log-commits");
        if (deleteFolder)
        {
            Directory.Delete(commits, recursive: true);
        }
        else
        {
            foreach (var file in Directory.GetFiles(commits))
            {
                File.Delete(file);
            }
        }

        var damage = AuditLogScan.Run(auditDir).Damage!;
        Assert.Equal(LogDamageKind.CommitMetadata, damage.Kind);
        Assert.Contains("log-commits: the segment files hold data but the commit metadata is missing or empty", Refusal(auditDir), StringComparison.Ordinal);
        // A reader cannot tell this from a running writer between FASTER's commit files: without the folder
        // it is no audit directory (exit 2), with it the chain falls short of the head file (exit 1).
        var (code, output) = Verify(auditDir);
        Assert.True(code == (deleteFolder ? 2 : 1), output);
        Assert.Contains(deleteFolder ? "not an audit directory" : "the head file is at seq 59", output, StringComparison.Ordinal);
    }

    [Fact]
    public void A_head_file_that_does_not_parse_is_refused_at_start_and_invalid_for_verify()
    {
        using var dir = new TempDir();
        AuditTestData.WriteAndExport(dir, 20);
        var auditDir = dir.File("audit");
        File.WriteAllText(Path.Combine(auditDir, AuditHeadMarker.FileName), "chain\nseq x\n");

        Assert.Equal(LogDamageKind.ShortOfHead, AuditLogScan.Run(auditDir).Damage!.Kind);
        Assert.Contains("head: the head file cannot be read", Refusal(auditDir), StringComparison.Ordinal);
        Assert.Equal(1, Verify(auditDir).Code);
    }

    [Fact]
    public async Task A_tail_cut_at_a_sector_boundary_is_refused_at_start_against_the_head_file_and_repair_continues_from_the_cut()
    {
        using var dir = new TempDir();
        AuditTestData.WriteAndExport(dir, 60);
        var auditDir = dir.File("audit");
        var address = long.Parse(AuditReader.ReadDirectory(auditDir).ElementAt(40).Where["log address ".Length..], CultureInfo.InvariantCulture);
        using (var f = new FileStream(Path.Combine(auditDir, "audit.log.0"), FileMode.Open))
        {
            f.SetLength(address / 512 * 512);
        }

        var damage = AuditLogScan.Run(auditDir).Damage!;
        Assert.InRange(damage.LastGoodSeq, 0, 39);
        Assert.Contains($"the last good record is seq {damage.LastGoodSeq},", Refusal(auditDir), StringComparison.Ordinal);
        Assert.Equal(1, Verify(auditDir).Code);

        Assert.Equal(0, await CommandLine.RunAsync(["audit", "repair", "--audit-dir", auditDir], new StringWriter(), new StringWriter()));
        using (var writer = Open(auditDir))
        {
            Assert.Equal(damage.LastGoodSeq + 1, writer.RecoveredRecords);
        }

        var kept = AuditReader.ReadDirectory(auditDir).Select(i => i.Entry!).ToList();
        var repair = kept.Single(e => e.Reason == "repair");
        // Seqs continue above every seq handed out before the damage (SPEC §5); the gap is named first.
        var lost = kept[(int)damage.LastGoodSeq + 1];
        Assert.Equal("lost", lost.Reason);
        Assert.StartsWith($"seqs {damage.LastGoodSeq + 1}..", lost.Path, StringComparison.Ordinal);
        Assert.True(lost.Seq > 59, $"lost record at seq {lost.Seq}");
        Assert.Equal(lost.Seq + 1, repair.Seq);
        Assert.Contains($"lost seq {damage.LastGoodSeq + 1} to {lost.Seq - 1};", repair.Path, StringComparison.Ordinal);
        Assert.Equal(0, Verify(auditDir).Code);
    }

    [Fact]
    public void A_zeroed_page_is_refused_at_start_and_invalid_at_the_page_start_and_salvage_finds_the_records_after_it()
    {
        using var dir = new TempDir();
        var auditDir = WriteLargeLog(dir);
        const int Page = 1 << 19;
        using (var f = new FileStream(Path.Combine(auditDir, "audit.log.0"), FileMode.Open))
        {
            f.Position = Page;
            f.Write(new byte[Page]);
        }

        Assert.Equal(LogDamageKind.Unreadable, AuditLogScan.Run(auditDir).Damage!.Kind);
        AssertSamePlace(auditDir, $"log address {Page} (audit.log.0 offset {Page}): no data where an entry belongs, but ");
        var salvage = Export(auditDir, salvage: true);
        Assert.Equal(0, salvage.Code);
        Assert.Contains($"export: skipped (--salvage): log address {Page}", salvage.Stderr, StringComparison.Ordinal);
        var exported = salvage.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length;
        Assert.InRange(exported, AuditLogScan.Run(auditDir).LastSeq + 2, 16_000 - 1);
    }

    [Fact]
    public void A_deleted_middle_segment_is_refused_at_start_at_the_place_verify_names()
    {
        using var dir = new TempDir();
        var auditDir = WriteLargeLog(dir);
        File.Move(Path.Combine(auditDir, "audit.log.1"), dir.File("aside"));

        Assert.Equal(LogDamageKind.MissingSegment, AuditLogScan.Run(auditDir).Damage!.Kind);
        AssertSamePlace(auditDir, "log address 1048576 (audit.log.1 offset 0): segment file audit.log.1 is missing, but ");
    }

    [Fact]
    public async Task A_flipped_byte_in_a_commit_record_is_refused_with_every_record_before_it_kept_by_repair()
    {
        using var dir = new TempDir();
        var auditDir = WriteLargeLog(dir);
        var records = AuditReader.ReadDirectory(auditDir).Select(i => long.Parse(i.Where["log address ".Length..], CultureInfo.InvariantCulture)).ToList();
        // FASTER's commit records lie between records (12-byte header, length negative, 4-byte alignment).
        var segment = File.ReadAllBytes(Path.Combine(auditDir, "audit.log.0"));
        long After(int i) => records[i] + 12 + ((BitConverter.ToInt32(segment, (int)records[i] + 8) + 3) & ~3);
        var gap = Enumerable.Range(0, records.Count - 1).First(i => records[i + 1] < segment.Length && records[i + 1] > After(i) && BitConverter.ToInt32(segment, (int)After(i) + 8) < 0);
        var commitRecord = After(gap);
        using (var f = new FileStream(Path.Combine(auditDir, "audit.log.0"), FileMode.Open))
        {
            f.Position = commitRecord + 20;
            var b = f.ReadByte();
            f.Position = commitRecord + 20;
            f.WriteByte((byte)(b ^ 0x10));
        }

        // The records FASTER's recovery stops short of (it ends at the commit before) are committed and
        // read, and so are those after the commit record: they continue the chain, no record is lost.
        Assert.Equal(records.Count - 1, AuditLogScan.Run(auditDir).Damage!.LastGoodSeq);
        AssertSamePlace(auditDir, $"log address {commitRecord} (audit.log.0 offset {commitRecord}): an entry that fails its checksum, but ");
        Assert.Equal(0, await CommandLine.RunAsync(["audit", "repair", "--audit-dir", auditDir], new StringWriter(), new StringWriter()));
        using (var writer = Open(auditDir, bits: 20))
        {
            Assert.Equal(records.Count, writer.RecoveredRecords);
        }

        Assert.Equal(0, Verify(auditDir).Code);
    }

    /// <summary>
    /// FASTER's recovery removes every commit file but the one it recovered from; run by a reader (verify,
    /// export, the scan) beside a running writer, it deleted the writer's newer commit files, and the log
    /// then held data with no commit metadata (found under load: a writer that recovered from a fault
    /// read as empty for 30 s). Readers delete nothing.
    /// </summary>
    [Fact]
    public void A_reader_deletes_no_commit_file()
    {
        using var dir = new TempDir();
        var auditDir = dir.File("audit");
        using (var writer = Open(auditDir, bits: 20))
        {
            AuditTestData.AppendDecisions(writer, 100, commitEvery: 50);
        }

        var commits = Path.Combine(auditDir, FasterLogFiles.CommitsFolder);
        var newest = Directory.GetFiles(commits, "commit.*").Single();
        var number = long.Parse(Path.GetFileName(newest).Split('.')[1], CultureInfo.InvariantCulture);
        // Another commit file beside it, as a running writer leaves for a moment while it replaces one.
        var other = Path.Combine(commits, $"commit.{number - 1}.0");
        File.Copy(newest, other);

        Assert.Equal(99, AuditLogScan.Run(auditDir).LastSeq);
        Assert.Equal(100, AuditReader.ReadDirectory(auditDir).Count());
        Assert.Equal(0, Verify(auditDir).Code);
        Assert.True(File.Exists(other) && File.Exists(newest), string.Join(",", Directory.GetFiles(commits)));
    }

    [Fact]
    public async Task Reads_beside_a_running_writer_never_see_damage()
    {
        using var dir = new TempDir();
        var auditDir = dir.File("audit");
        using var writer = Open(auditDir, bits: 20);
        using var written = new SemaphoreSlim(0);
        using var reading = new SemaphoreSlim(0);
        const int Batches = 24;
        // Each read runs while the writer appends the next batch (1,000 ~330-byte records): the log grows
        // across 512 KiB pages and 1 MiB segments, and its commit files are replaced, under the reads.
        var writing = Task.Run(async () =>
        {
            for (var batch = 0; batch < Batches; batch++)
            {
                AuditTestData.AppendDecisions(writer, 1000, pathLength: 200, prefix: $"h{batch}-");

                written.Release();
                Assert.True(await reading.WaitAsync(TimeSpan.FromSeconds(60)), "the reader never started its round");
            }
        });

        var previous = -1L;
        for (var round = 0; round < Batches; round++)
        {
            Assert.True(await written.WaitAsync(TimeSpan.FromSeconds(60)), $"the writer never wrote batch {round}");
            reading.Release();
            var seq = -1L;
            try
            {
                foreach (var item in AuditReader.ReadDirectory(auditDir))
                {
                    Assert.True(item.Entry is not null, $"round {round}: {item.Where}: {item.Problem}");
                    Assert.Equal(++seq, item.Entry.Seq);
                }
            }
            catch (IOException ex) when (ex.Message.Contains("not an audit directory", StringComparison.Ordinal))
            {
                // FASTER's commit manager can leave a running writer's directory without log-commits/ for a
                // moment; a reader then answers as it always did (exit 2), never with damage.
            }

            // FASTER's read-only recovery can lag the writer (it may see fewer records than a round before,
            // around a new segment's commit file); what it reads is a prefix, never damage.
            previous = Math.Max(previous, seq);
        }

        await writing;
        Assert.True(previous > 0, "no record was read");
        var (code, output) = Verify(auditDir);
        Assert.True(code == 0, output);
    }

    [GeneratedRegex(@"last good seq (\d+)")]
    private static partial Regex LastGood();
}
