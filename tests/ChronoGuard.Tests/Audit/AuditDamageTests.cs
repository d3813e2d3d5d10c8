using ChronoGuard.Audit;
using ChronoGuard.Sidecar.Cli;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Audit;

/// <summary>Damage on disk is refused at start, never appended over; repair moves it aside and the chain says so.</summary>
[Collection(RunAlone.Name)]
public sealed class AuditDamageTests
{
    private const int Records = 60;

    private static AuditWriter Open(string auditDir) => AuditWriter.Open(new AuditOptions { Directory = auditDir, QueueCapacity = 64 }, TimeProvider.System);

    private static List<string> Snapshot(string auditDir) => AuditTestData.Export(auditDir);

    /// <summary>
    /// Flip one byte at a time across the whole segment (a dense sample) and every byte of the commit
    /// file: each start either refuses, leaving the files exactly as they were, or the log it opens on
    /// still holds every committed record unchanged. Appending over a committed record is never an outcome.
    /// </summary>
    [Fact]
    public void A_flipped_byte_anywhere_in_committed_records_or_commit_files_is_refused_or_harmless_never_overwritten()
    {
        using var dir = new TempDir();
        var original = AuditTestData.WriteAndExport(dir, 20);
        var auditDir = dir.File("audit");
        var segment = Path.Combine(auditDir, "audit.log.0");
        var commit = Directory.GetFiles(Path.Combine(auditDir, "log-commits"))[0];
        var pristine = Directory.GetFiles(auditDir, "*", SearchOption.AllDirectories).ToDictionary(f => f, File.ReadAllBytes);
        var refused = 0;
        var checkedBytes = 0;
        var segmentLength = new FileInfo(segment).Length;

        void Probe(string file, long offset)
        {
            foreach (var (f, bytes) in pristine)
            {
                File.WriteAllBytes(f, bytes);
            }

            var damaged = (byte[])pristine[file].Clone();
            damaged[offset] ^= 0x10;
            File.WriteAllBytes(file, damaged);
            checkedBytes++;
            try
            {
                Open(auditDir).Dispose();
            }
            catch (InvalidDataException ex)
            {
                refused++;
                Assert.Contains("refusing to append over committed records", ex.Message, StringComparison.Ordinal);
                Assert.DoesNotContain('\n', ex.Message);
                Assert.Equal(damaged, File.ReadAllBytes(file));
                Assert.Equal(pristine[segment].Length, new FileInfo(segment).Length);
                return;
            }

            // Opened: the flip was in bytes nothing reads (padding); every committed record is still there.
            var after = Snapshot(auditDir);
            Assert.True(after.Count >= original.Count, $"{Path.GetFileName(file)} byte {offset}: {after.Count} records after the start, {original.Count} before");
            Assert.Equal(original, after.Take(original.Count));
        }

        // Every 29th byte of the records (entry headers, hashes, fields: each entry is hit several
        // times), and every 7th byte of the commit file; ~50 ms per start keeps this to ~10 s.
        var dataEnd = AuditLogScan.Run(auditDir).ReadableEnd;
        for (long offset = 0; offset < Math.Min(dataEnd, segmentLength); offset += 29)
        {
            Probe(segment, offset);
        }

        for (long offset = 0; offset < pristine[commit].Length; offset += 7)
        {
            Probe(commit, offset);
        }

        Assert.True(refused > checkedBytes / 4, $"only {refused} of {checkedBytes} flips refused");
    }

    [Theory]
    [InlineData("delete-segment")]
    [InlineData("shorten-segment")]
    [InlineData("delete-log-commits")]
    [InlineData("delete-everything-but-head")]
    public void A_directory_that_lost_log_files_is_refused_at_start_instead_of_restarting_the_chain(string damage)
    {
        using var dir = new TempDir();
        AuditTestData.WriteAndExport(dir, Records);
        var auditDir = dir.File("audit");
        var segment = Path.Combine(auditDir, "audit.log.0");
        switch (damage)
        {
            case "delete-segment":
                File.Delete(segment);
                break;
            case "shorten-segment":
                using (var f = new FileStream(segment, FileMode.Open))
                {
                    f.SetLength(f.Length / 2);
                }

                break;
            case "delete-log-commits":
                Directory.Delete(Path.Combine(auditDir, "log-commits"), recursive: true);
                break;
            default:
                File.Delete(segment);
                Directory.Delete(Path.Combine(auditDir, "log-commits"), recursive: true);
                break;
        }

        var ex = Assert.Throws<InvalidDataException>(() => Open(auditDir).Dispose());
        Assert.Contains("the audit log is damaged", ex.Message, StringComparison.Ordinal);
        Assert.Contains("audit repair", ex.Message, StringComparison.Ordinal);
        Assert.NotNull(AuditLogScan.Run(auditDir).Damage);
    }

    [Fact]
    public async Task The_real_binary_refuses_a_damaged_log_with_one_line_and_exit_2_and_leaves_it_untouched()
    {
        using var dir = new TempDir();
        AuditTestData.WriteAndExport(dir, Records);
        var segment = Path.Combine(dir.File("audit"), "audit.log.0");
        var bytes = File.ReadAllBytes(segment);
        bytes[AuditLogScan.Run(dir.File("audit")).ReadableEnd / 2] ^= 0x01;
        File.WriteAllBytes(segment, bytes);

        var (code, stderr) = await SidecarRun.RunToExitAsync(dir.Path);
        Assert.Equal(2, code);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("the audit log is damaged", line, StringComparison.Ordinal);
        Assert.Contains("last good record is seq", line, StringComparison.Ordinal);
        Assert.Equal(bytes, File.ReadAllBytes(segment));
    }

    [Fact]
    public async Task Repair_moves_the_damage_aside_and_the_next_start_records_it_in_the_chain()
    {
        using var dir = new TempDir();
        var original = AuditTestData.WriteAndExport(dir, Records);
        var auditDir = dir.File("audit");
        var segment = Path.Combine(auditDir, "audit.log.0");
        var bytes = File.ReadAllBytes(segment);
        // A byte in the middle of the log: the records before it are the good prefix.
        bytes[AuditLogScan.Run(auditDir).ReadableEnd / 2] ^= 0x01;
        File.WriteAllBytes(segment, bytes);
        var damage = AuditLogScan.Run(auditDir).Damage!;

        var stdout = new StringWriter();
        var stderr = new StringWriter();
        Assert.True(await CommandLine.RunAsync(["audit", "repair", "--audit-dir", auditDir], stdout, stderr) == 0, stderr.ToString());
        Assert.Contains("repaired", stdout.ToString(), StringComparison.Ordinal);
        var aside = Assert.Single(Directory.GetDirectories(auditDir, "damaged-*"));
        Assert.Equal(bytes, File.ReadAllBytes(Path.Combine(aside, "audit.log.0")));
        Assert.True(Directory.Exists(Path.Combine(aside, "log-commits")));

        // The real binary starts now and writes the repair record right after the one naming the lost seqs.
        await using (var sidecar = await SidecarProcess.StartAsync(dir.Path))
        {
            sidecar.Signal("TERM");
            Assert.Equal(0, await sidecar.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        }

        var verify = new StringWriter();
        Assert.True(VerifyCommand.Run(["--audit-dir", auditDir], verify, new StringWriter()) == 0, verify.ToString());
        var after = AuditReader.ReadDirectory(auditDir).Select(i => i.Entry!).ToList();
        var good = (int)damage.LastGoodSeq + 1;
        Assert.Equal(original.Take(good), AuditTestData.Export(auditDir).Take(good));
        // Seqs continue above every seq handed out before the damage (SPEC §5): the gap is named first.
        Assert.Equal("lost", after[good].Reason);
        Assert.StartsWith($"seqs {damage.LastGoodSeq + 1}..", after[good].Path, StringComparison.Ordinal);
        Assert.True(after[good].Seq >= Records, $"lost record at seq {after[good].Seq}");
        var repair = after[good + 1];
        Assert.Equal(after[good].Seq + 1, repair.Seq);
        Assert.Equal(AuditKind.System, repair.Kind);
        Assert.Equal("repair", repair.Reason);
        Assert.Contains($"last good seq {damage.LastGoodSeq} hash {Convert.ToHexStringLower(after[good - 1].Hash)}", repair.Path, StringComparison.Ordinal);
        Assert.Contains($"lost seq {damage.LastGoodSeq + 1} to {after[good].Seq - 1};", repair.Path, StringComparison.Ordinal);
        Assert.Equal("start", after[good + 2].Reason);
        Assert.False(File.Exists(Path.Combine(auditDir, AuditRepairNote.FileName)));

        // And repair on an intact log changes nothing.
        var again = new StringWriter();
        Assert.Equal(0, await CommandLine.RunAsync(["audit", "repair", "--audit-dir", auditDir], again, new StringWriter()));
        Assert.Contains("nothing to repair", again.ToString(), StringComparison.Ordinal);
        Assert.Single(Directory.GetDirectories(auditDir, "damaged-*"));
    }

    [Fact]
    public async Task Repair_of_a_directory_that_lost_every_log_file_continues_from_the_head_file()
    {
        using var dir = new TempDir();
        AuditTestData.WriteAndExport(dir, Records);
        var auditDir = dir.File("audit");
        var marker = AuditHeadMarker.Read(auditDir)!;
        File.Delete(Path.Combine(auditDir, "audit.log.0"));
        Directory.Delete(Path.Combine(auditDir, "log-commits"), recursive: true);
        Assert.Equal(0, await CommandLine.RunAsync(["audit", "repair", "--audit-dir", auditDir], new StringWriter(), new StringWriter()));
        using (var writer = Open(auditDir))
        {
            Assert.Equal(Records, writer.RecoveredRecords);
        }

        var first = AuditReader.ReadDirectory(auditDir).First().Entry!;
        Assert.Equal(Records, first.Seq);
        Assert.Equal("repair", first.Reason);
        Assert.Equal(marker.Hash, Convert.ToHexStringLower(first.PrevHash));
    }
}
