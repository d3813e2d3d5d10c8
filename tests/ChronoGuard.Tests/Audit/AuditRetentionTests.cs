using System.Globalization;
using System.Text.RegularExpressions;
using ChronoGuard.Audit;
using ChronoGuard.Sidecar.Cli;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Audit;

[Collection(RunAlone.Name)]
public sealed partial class AuditRetentionTests
{
    private const int Bits = 19;
    private const long MaxBytes = 2L << 20;

    // At most four idle segment handles, one more per device I/O in flight (FASTER has at most its four
    // memory pages in flight, here four segments), and the lock, pid and commit files.
    private const int DescriptorBound = BoundedFileDevice.MaxOpen + 4 + 4;

    [Fact]
    public void MaxBytes_keeps_the_segment_files_within_the_bound_and_counts_what_it_dropped()
    {
        using var dir = new TempDir();
        var auditDir = dir.File("audit");
        var options = new AuditOptions { Directory = auditDir, SegmentSizeBits = Bits, MaxBytes = MaxBytes, QueueCapacity = 1024 };
        var largest = 0L;
        var drops = new List<(long From, long Seq)>();
        var writer = AuditWriter.Open(options, TimeProvider.System);
        writer.OnRetention = (seq, _) =>
        {
            drops.Add((writer.LastDroppedFromSeq, seq));
            largest = Math.Max(largest, SegmentBytes(auditDir));
        };
        for (var round = 0; round < 20; round++)
        {
            AuditTestData.AppendDecisions(writer, 1000, prefix: $"r{round}-");
        }

        // The stop commits the rest; its retention runs then too.
        writer.Dispose();
        Assert.True(writer.RetentionDroppedBytes > 0 && writer.RetentionDroppedRecords > 0);
        Assert.Equal(drops[^1].Seq, writer.RetentionDroppedRecords);

        // The drops cover the log from seq 0 without a hole, and each left the files within the bound
        // (between commits, pages FASTER flushed ahead of the commit in flight come on top).
        Assert.NotEmpty(drops);
        Assert.Equal(0, drops[0].From);
        for (var i = 1; i < drops.Count; i++)
        {
            Assert.Equal(drops[i - 1].Seq, drops[i].From);
        }

        Assert.InRange(largest, 1, MaxBytes);
        var stdout = new StringWriter();
        Assert.True(VerifyCommand.Run(["--audit-dir", auditDir], stdout, new StringWriter()) == 0, stdout.ToString());
        Assert.Contains($"(from seq {drops[^1].Seq}: older segments were dropped", stdout.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Without_any_bound_the_descriptors_the_log_holds_do_not_grow_with_its_length()
    {
        using var dir = new TempDir();
        var auditDir = dir.File("audit");
        var samples = new List<int>();
        using (var writer = AuditWriter.Open(new AuditOptions { Directory = auditDir, SegmentSizeBits = Bits, MaxBytes = 0, QueueCapacity = 1024 }, TimeProvider.System))
        {
            for (var round = 0; round < 12; round++)
            {
                AuditTestData.AppendDecisions(writer, 2000, prefix: $"r{round}-");
                samples.Add(DescriptorsInto(Environment.ProcessId, auditDir));
            }
        }

        // FASTER's own device kept two per segment ever written; every segment is still here.
        Assert.True(NewestSegment(auditDir) >= 10, $"{NewestSegment(auditDir)} segments");
        Assert.Equal(NewestSegment(auditDir) + 1, Directory.GetFiles(auditDir, "audit.log.*").Length);
        Assert.True(samples.Max() <= DescriptorBound, $"descriptors into the audit directory: {string.Join(',', samples)}");
    }

    [Fact]
    public void A_MaxBytes_below_two_segments_is_refused_at_start_in_one_line()
    {
        using var dir = new TempDir();
        var ex = Assert.Throws<InvalidDataException>(() => AuditWriter.Open(new AuditOptions { Directory = dir.File("audit"), SegmentSizeBits = 20, MaxBytes = 1 << 20 }, TimeProvider.System));
        Assert.Equal("Audit:MaxBytes: 1048576 is less than two segments of 2^20 bytes (allowed: 0 for unbounded, or at least 2097152)", ex.Message);
    }

    /// <summary>
    /// Through the real binary, many segments: the descriptors it holds into the audit directory stay
    /// flat, the segment files stay within Audit:MaxBytes, each drop is a chained system record naming
    /// the dropped seqs and the last dropped hash, verify and verify --checkpoints prove the kept part.
    /// </summary>
    [Fact]
    public async Task The_sidecar_writing_many_segments_holds_flat_descriptors_and_bounded_disk_and_the_kept_log_verifies()
    {
        using var dir = new TempDir();
        var keys = dir.File("keys");
        Assert.Equal(0, AuditKeygenCommand.Run(["--out", keys], new StringWriter(), new StringWriter()));
        var auditDir = dir.File("audit");
        var fds = new List<int>();
        var largest = 0L;
        string metrics;
        await using (var sidecar = await SidecarProcess.StartAsync(dir.Path, environment: new Dictionary<string, string>
        {
            ["CHRONOGUARD__Audit__SegmentSizeBits"] = Bits.ToString(CultureInfo.InvariantCulture),
            ["CHRONOGUARD__Audit__MaxBytes"] = MaxBytes.ToString(CultureInfo.InvariantCulture),
            ["CHRONOGUARD__Audit__SigningKeyFile"] = Path.Combine(keys, AuditKeygenCommand.PrivateFile),
            ["CHRONOGUARD__Audit__CheckpointIntervalMs"] = "200",
        }))
        {
            var path = "/" + new string('p', 300);
            var request = $"GET http://127.0.0.1:1{path} HTTP/1.1\r\nHost: 127.0.0.1:1\r\nConnection: close\r\n\r\n";

            // Until the log has passed through 16 segments (8 MiB, four times the bound).
            while (NewestSegment(auditDir) < 16)
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
                fds.Add(DescriptorsInto(sidecar.Process.Id, auditDir));
                largest = Math.Max(largest, SegmentBytes(auditDir));
            }

            using var http = new HttpClient();
            metrics = await http.GetStringAsync($"http://{sidecar.StatsEndPoint}/metrics");
            sidecar.Signal("TERM");
            Assert.Equal(0, await sidecar.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        }

        // FASTER's own device held two per segment ever written (32 here); now a handful, whatever the length.
        Assert.True(fds.Max() <= DescriptorBound, $"descriptors into the audit directory: {string.Join(',', fds)}");
        // Sampled at any moment, not right after a drop: pages FASTER flushed ahead of the commit in flight
        // may come on top until that commit lets retention run (here at most its 2 MiB of memory pages).
        Assert.InRange(largest, 1, MaxBytes + (2 << 20));
        Assert.Matches(@"(?m)^chronoguard_audit_retention_dropped_bytes_total [1-9]\d*$", metrics);
        Assert.Matches(@"(?m)^chronoguard_audit_retention_dropped_records_total [1-9]\d*$", metrics);

        var stdout = new StringWriter();
        Assert.True(VerifyCommand.Run(["--audit-dir", auditDir], stdout, new StringWriter()) == 0, stdout.ToString());
        var first = AuditReader.ReadDirectory(auditDir).First().Entry!;
        Assert.True(first.Seq > 0);
        Assert.Contains($"(from seq {first.Seq}: older segments were dropped", stdout.ToString(), StringComparison.Ordinal);

        // The drop that made the kept log start where it does is a chained record naming the seqs and the hash.
        var retention = AuditReader.ReadDirectory(auditDir).Select(i => i.Entry!).Where(e => e.Reason == "retention").ToList();
        Assert.Contains(retention, e => e.Path.StartsWith("dropped seq ", StringComparison.Ordinal)
            && Dropped().Match(e.Path) is { Success: true } m && long.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture) == first.Seq - 1
            && m.Groups[3].Value == Convert.ToHexStringLower(first.PrevHash));

        var checkpoints = Path.Combine(auditDir, Checkpoint.FileName);
        stdout = new StringWriter();
        Assert.True(VerifyCommand.Run(["--audit-dir", auditDir, "--checkpoints", checkpoints, "--public-key", Path.Combine(keys, AuditKeygenCommand.PublicFile)], stdout, new StringWriter()) == 0, stdout.ToString());
        Assert.Contains("reaches the newest of", stdout.ToString(), StringComparison.Ordinal);
    }

    private static long SegmentBytes(string auditDir) =>
        Directory.GetFiles(auditDir, "audit.log.*").Sum(f => new FileInfo(f).Exists ? new FileInfo(f).Length : 0);

    private static int NewestSegment(string auditDir) =>
        Directory.GetFiles(auditDir, "audit.log.*").Select(f => int.Parse(Path.GetExtension(f)[1..], CultureInfo.InvariantCulture)).DefaultIfEmpty(-1).Max();

    /// <summary>The process's open descriptors that point into the audit directory.</summary>
    private static int DescriptorsInto(int pid, string auditDir)
    {
        var count = 0;
        foreach (var fd in Directory.GetFiles($"/proc/{pid}/fd"))
        {
            try
            {
                if (new FileInfo(fd).LinkTarget is { } target && target.StartsWith(auditDir + "/", StringComparison.Ordinal))
                {
                    count++;
                }
            }
            catch (IOException)
            {
                // Closed while listed.
            }
        }

        return count;
    }

    [GeneratedRegex(@"^dropped seq (\d+) to (\d+); the hash of the last dropped record is ([0-9a-f]{64})")]
    private static partial Regex Dropped();

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
