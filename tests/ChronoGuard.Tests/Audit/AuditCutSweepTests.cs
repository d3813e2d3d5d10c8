using ChronoGuard.Audit;
using ChronoGuard.Sidecar.Cli;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Audit;

/// <summary>
/// A segment cut anywhere, with the writer's head file gone too, is damage for verify (SPEC §5): the
/// scan needs no outside anchor to see a partial entry, a partial sector (zeros after the last entry cut
/// short too), or data that stops inside a page after a record no commit record follows. And every
/// record wholly before the cut is kept.
/// </summary>
[Collection(RunAlone.Name)]
public sealed class AuditCutSweepTests
{
    private const int HeaderBytes = 12;

    private const int Bits = 19;

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_cut_anywhere_in_a_segment_without_the_head_file_is_damage_and_keeps_every_record_before_it(bool newest)
    {
        using var dir = new TempDir();
        var auditDir = dir.File("audit");
        // What a crash leaves: the real binary killed under load, its commit metadata file behind the
        // commit records in the log (FASTER rewrites it only every 1,000 commits and at a new segment).
        await using (var sidecar = await SidecarProcess.StartAsync(dir.Path, environment: new Dictionary<string, string>
        {
            ["CHRONOGUARD__Audit__SegmentSizeBits"] = Bits.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["CHRONOGUARD__Audit__MaxBytes"] = "0",
        }))
        {
            var request = $"GET http://127.0.0.1:1/{new string('p', 300)} HTTP/1.1\r\nHost: 127.0.0.1:1\r\nConnection: close\r\n\r\n";
            // Three segments at least, the newest half full.
            while (Directory.GetFiles(auditDir, "audit.log.*") is var files && (files.Length < 3 || new FileInfo(files.MaxBy(f => int.Parse(Path.GetExtension(f)[1..], System.Globalization.CultureInfo.InvariantCulture))!).Length < (1 << Bits) / 2))
            {
                await Task.WhenAll(Enumerable.Range(0, 4).Select(async _ =>
                {
                    for (var i = 0; i < 100; i++)
                    {
                        using var client = await RawClient.ConnectAsync(sidecar.ProxyEndPoint);
                        await client.SendAsync(request);
                        await client.ReadHeadAsync();
                    }
                }));
            }

            sidecar.Signal("KILL");
            await sidecar.WaitForExitAsync(TimeSpan.FromSeconds(30));
        }

        File.Delete(Path.Combine(auditDir, AuditHeadMarker.FileName));
        var entries = new AuditLogScan(auditDir).Entries().ToList();
        Assert.True(AuditLogScan.Run(auditDir).Damage is null, "the log the crash left is not damage");
        // FASTER's reader creates an empty file where it looks for the next segment: not a segment.
        var segments = Directory.GetFiles(auditDir, "audit.log.*").Where(f => new FileInfo(f).Length > 0).Select(f => int.Parse(Path.GetExtension(f)[1..], System.Globalization.CultureInfo.InvariantCulture)).Order().ToList();
        Assert.True(segments.Count >= 3, string.Join(',', segments));
        var segment = newest ? segments[^1] : segments[1];
        var file = Path.Combine(auditDir, $"audit.log.{segment}");
        var start = (long)segment << Bits;
        var length = new FileInfo(file).Length;
        var bytes = File.ReadAllBytes(file);

        // Cut points: sector boundaries, odd offsets, and exactly at entry boundaries (the hardest: the
        // bytes left are whole entries), from the end of the segment down to its start.
        var random = new Random(20261204);
        var cuts = new SortedSet<long>();
        for (var i = 0; i < 40; i++)
        {
            cuts.Add(random.NextInt64(1, length / 512) * 512);
            cuts.Add(random.NextInt64(1, length));
        }

        foreach (var e in entries.Where(e => e.Address > start && e.Address < start + length).OrderBy(_ => random.Next()).Take(40))
        {
            cuts.Add(e.Address - start);
        }

        cuts.Add(0);
        var checkedCuts = 0;
        foreach (var cut in cuts.Reverse())
        {
            using (var f = new FileStream(file, FileMode.Open))
            {
                f.SetLength(cut);
            }

            // The one shape no scan can tell from a log that was simply committed up to there (a middle
            // segment's later commit records tell): the cut is where FASTER itself may end a segment.
            if (newest && EndsLikeFaster(bytes, cut))
            {
                continue;
            }

            checkedCuts++;
            var scan = AuditLogScan.Run(auditDir);
            var damage = scan.Damage;
            Assert.True(damage is not null, $"a cut of {file} at {cut} (of {length}) with no head file reads as intact: {scan.Records} records");

            // Every committed record whose entry ends before the cut is kept (and those flushed after the
            // last commit, when the cut falls past it); a record whose bytes past the cut were zeros
            // anyway still reads whole and verifies.
            var wholeBefore = entries.Count(e => e.Address + HeaderBytes + e.Payload.Length <= start + cut) - 1;
            var next = (int)wholeBefore + 1;
            var zerosPastCut = next < entries.Count && entries[next].Address >= start && entries[next].Address - start + HeaderBytes + entries[next].Payload.Length is var end && end > cut && end <= bytes.Length
                && bytes.AsSpan((int)cut, (int)(end - cut)).IndexOfAnyExcept((byte)0) < 0;
            var most = next >= entries.Count ? long.MaxValue : zerosPastCut ? next : wholeBefore;
            Assert.True(damage.LastGoodSeq >= wholeBefore && damage.LastGoodSeq <= most, $"cut at {cut}: last good seq {damage.LastGoodSeq}, but seq {wholeBefore} is the last committed one that ends before the cut ({damage.Problem})");
            if (checkedCuts % 10 == 0)
            {
                var stdout = new StringWriter();
                Assert.Equal(1, VerifyCommand.Run(["--audit-dir", auditDir], stdout, new StringWriter()));
            }
        }

        Assert.True(checkedCuts >= 80, $"{checkedCuts} cuts checked");
    }

    /// <summary>
    /// The shape behind the sweep's rare misses, built on purpose: the newest segment ends at the sector
    /// after its last commit record with zeros after that record (a commit, then the crash), and a cut
    /// inside those zeros leaves a file that is not a whole number of sectors. The walk took the zeros it
    /// read for a page's padding and stepped to the next page, which with pages as large as segments is
    /// the next segment (missing, or the empty file FASTER's reader creates), and judged that file's length.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_cut_in_the_zeros_after_the_newest_segments_last_commit_record_is_damage(bool emptyNextSegment)
    {
        using var dir = new TempDir();
        var auditDir = WriteLog(dir);
        var segments = Segments(auditDir);
        var file = SegmentFile(auditDir, segments[^1]);
        var bytes = File.ReadAllBytes(file);
        // The newest commit record with room after it in its sector for a header and an off-sector cut (the
        // last records are each their own commit, and a record with its commit record is ~380 bytes, so of
        // two consecutive commit records one has room).
        var commit = PageEntries(bytes).Last(e => e.Length < 0 && e.End % 512 is > 0 and < 512 - HeaderBytes);
        var sectorEnd = (commit.End + 511) / 512 * 512;
        var shape = bytes[..(int)sectorEnd];
        shape.AsSpan((int)commit.End).Clear();
        File.WriteAllBytes(file, shape);
        var next = SegmentFile(auditDir, segments[^1] + 1);
        File.Delete(next);
        if (emptyNextSegment)
        {
            File.WriteAllBytes(next, []);
        }

        var intact = AuditLogScan.Run(auditDir);
        Assert.True(intact.Damage is null, $"what a crash after the commit at {commit.End} leaves: {intact.Describe()}");
        // Cuts that leave fewer zeros than an entry header (found before) and more (missed), near both ends.
        for (var cut = commit.End + 1; cut < sectorEnd; cut += cut - commit.End < 2 * HeaderBytes || sectorEnd - cut <= 2 * HeaderBytes ? 1 : 11)
        {
            using (var f = new FileStream(file, FileMode.Open))
            {
                f.SetLength(cut);
            }

            var damage = AuditLogScan.Run(auditDir).Damage;
            Assert.True(damage is not null, $"a cut at {cut} in the zeros after the commit record ending at {commit.End} (sector end {sectorEnd}) reads as intact");
            Assert.Contains("not a whole number of 512-byte sectors", damage.Problem, StringComparison.Ordinal);
            Assert.Equal(intact.LastSeq, damage.LastGoodSeq);
        }
    }

    /// <summary>
    /// The neighbours: the zeros at the end of a page that FASTER wrote whole (a record that did not fit went
    /// to the next page, here the next segment). A cut there removes nothing but padding, yet a file that
    /// stops inside a page FASTER wrote whole is a cut, on a sector boundary or off it; and the walk must
    /// not read past it into the next segment as if the page were complete.
    /// </summary>
    [Fact]
    public void A_cut_in_the_padding_at_the_end_of_a_page_written_whole_is_damage()
    {
        using var dir = new TempDir();
        var auditDir = WriteLog(dir);
        var segments = Segments(auditDir);
        var checkedCuts = 0;
        foreach (var segment in segments.SkipLast(1))
        {
            var file = SegmentFile(auditDir, segment);
            var bytes = File.ReadAllBytes(file);
            Assert.Equal(1 << Bits, bytes.Length);
            var last = PageEntries(bytes)[^1];
            var lastSeq = new AuditLogScan(auditDir).Entries().Last(e => e.Address < ((long)segment << Bits) + bytes.Length);
            // Cuts in the padding (the zeros after the page's last entry): those that leave fewer bytes than an
            // entry's header in the page and those that leave more, on a sector boundary and off it.
            var cuts = new SortedSet<long>();
            for (var cut = last.End; cut < bytes.Length; cut++)
            {
                if (cut - last.End <= HeaderBytes || bytes.Length - cut <= HeaderBytes || cut % 512 == 0 || cut % 29 == 0)
                {
                    cuts.Add(cut);
                }
            }

            foreach (var cut in cuts)
            {
                File.WriteAllBytes(file, bytes[..(int)cut]);
                var scan = AuditLogScan.Run(auditDir);
                Assert.True(scan.Damage is not null, $"a cut of audit.log.{segment} at {cut} in the padding after its last entry (ending at {last.End}) reads as intact: {scan.Records} records");
                Assert.True(scan.Damage.LastGoodSeq >= SeqOf(lastSeq), $"cut at {cut}: last good seq {scan.Damage.LastGoodSeq} ({scan.Damage.Problem})");
                checkedCuts++;
            }

            File.WriteAllBytes(file, bytes);
        }

        Assert.True(checkedCuts > 0, "no page of the log ends in padding");
    }

    private static string WriteLog(TempDir dir)
    {
        var auditDir = dir.File("audit");
        using (var writer = AuditWriter.Open(new AuditOptions { Directory = auditDir, QueueCapacity = 1024, SegmentSizeBits = Bits, MaxBytes = 0 }, TimeProvider.System))
        {
            // Three segments and more, the newest ending in a run of records each followed by its commit
            // record. FASTER rewrites its commit file only every 1,000 commits and at a new segment, so it
            // claims less than those commit records do, as after a crash.
            AuditTestData.AppendDecisions(writer, 3950, commitEvery: 50);
            AuditTestData.AppendDecisions(writer, 30, prefix: "c", commitEvery: 1);
        }

        File.Delete(Path.Combine(auditDir, AuditHeadMarker.FileName));
        Assert.True(AuditLogScan.Run(auditDir).Damage is null, "the log as written is not damage");
        return auditDir;
    }

    private static List<int> Segments(string auditDir)
    {
        var segments = Directory.GetFiles(auditDir, "audit.log.*").Where(f => new FileInfo(f).Length > 0).Select(f => int.Parse(Path.GetExtension(f)[1..], System.Globalization.CultureInfo.InvariantCulture)).Order().ToList();
        Assert.True(segments.Count >= 3, string.Join(',', segments));
        return segments;
    }

    private static string SegmentFile(string auditDir, int segment) => Path.Combine(auditDir, $"audit.log.{segment.ToString(System.Globalization.CultureInfo.InvariantCulture)}");

    private static long SeqOf(AuditLogScan.Entry entry) => System.Buffers.Binary.BinaryPrimitives.ReadInt64BigEndian(entry.Payload.AsSpan(AuditCodec.EntryPrefix + 1));

    /// <summary>The entries of a one-page segment file, from its start to the first zero length.</summary>
    private static List<(long At, int Length, long End)> PageEntries(byte[] segment)
    {
        var entries = new List<(long, int, long)>();
        // The log's very first page (segment 0) starts its entries at FASTER's first address, 64.
        var at = BitConverter.ToInt32(segment, 8) == 0 ? 64L : 0L;
        while (at + HeaderBytes <= segment.Length && BitConverter.ToInt32(segment, (int)at + 8) is var length && length != 0)
        {
            var end = at + HeaderBytes + ((Math.Abs((long)length) + 3) & ~3);
            entries.Add((at, length, end));
            at = end;
        }

        return entries;
    }

    /// <summary>
    /// Whether the bytes before <paramref name="cut"/> are what FASTER itself leaves: a whole page, or up
    /// to the sector after a commit record of that page.
    /// </summary>
    internal static bool EndsLikeFaster(byte[] segment, long cut)
    {
        const int Page = 1 << 19;
        if (cut % Page == 0)
        {
            return true;
        }

        if (cut % 512 != 0)
        {
            return false;
        }

        // Walk the page holding the cut from its start: entries are contiguous within a page.
        var page = cut / Page * Page;
        // The log's very first page (segment 0) starts its entries at FASTER's first address, 64.
        var at = page == 0 && BitConverter.ToInt32(segment, 8) == 0 ? 64 : page;
        var commitEnd = -1L;
        while (at + HeaderBytes <= segment.Length)
        {
            var length = BitConverter.ToInt32(segment, (int)at + 8);
            if (length == 0)
            {
                break;
            }

            var end = at + HeaderBytes + ((Math.Abs((long)length) + 3) & ~3);
            if (end > cut)
            {
                break;
            }

            commitEnd = length < 0 ? end : commitEnd;
            at = end;
        }

        return commitEnd > page && (commitEnd + 511) / 512 * 512 >= cut;
    }
}
