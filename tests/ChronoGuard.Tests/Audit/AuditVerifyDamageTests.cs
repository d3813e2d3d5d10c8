using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.RegularExpressions;
using ChronoGuard.Audit;
using ChronoGuard.Sidecar.Cli;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Audit;

/// <summary>
/// Damage is an error with its place: single flipped bytes across the committed records and commit
/// files of a log written by the real binary, shortened and deleted segments. Never "valid" with
/// fewer records than were committed.
/// </summary>
public sealed partial class AuditVerifyDamageTests(AuditVerifyDamageTests.RealLog log) : IClassFixture<AuditVerifyDamageTests.RealLog>
{
    /// <summary>One log of ~310 records written by <c>chronoguard run</c> (commit-before-forward) and stopped.</summary>
    public sealed class RealLog : IAsyncLifetime, IDisposable
    {
        private readonly TempDir _dir = new();

        public string Directory => _dir.File("audit");

        public long Records { get; private set; }

        public string Head { get; private set; } = string.Empty;

        /// <summary>Log address of each record (the FASTER entry, header included) by seq.</summary>
        public List<long> Addresses { get; } = [];

        /// <summary>Bytes of each record's entry: FASTER's 12-byte header, prevHash, hash, canonical.</summary>
        public List<int> Sizes { get; } = [];

        public async Task InitializeAsync()
        {
            await using (var sidecar = await SidecarProcess.StartAsync(_dir.Path, environment: new Dictionary<string, string> { ["CHRONOGUARD__Audit__Durability"] = "commit-before-forward" }))
            {
                using var http = new HttpClient();
                var deadline = Stopwatch.StartNew();
                while ((await http.GetFromJsonAsync<HeadDto>($"http://{sidecar.StatsEndPoint}/audit/head"))!.Seq < 305)
                {
                    Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(60), "the sidecar never reached 305 records");
                    // Observe mode, nothing listens on port 1: a decision (upstream_refused, dialedIp set) per request.
                    using var client = await RawClient.ConnectAsync(sidecar.ProxyEndPoint);
                    await client.SendAsync("GET http://127.0.0.1:1/x HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n");
                    await client.ReadHeadAsync();
                }

                sidecar.Signal("TERM");
                Assert.Equal(0, await sidecar.WaitForExitAsync(TimeSpan.FromSeconds(30)));
            }

            foreach (var item in AuditReader.ReadDirectory(Directory))
            {
                Assert.True(item.Entry is not null, item.Problem);
                Assert.Equal(Addresses.Count, item.Entry.Seq);
                Addresses.Add(long.Parse(item.Where["log address ".Length..], CultureInfo.InvariantCulture));
                Sizes.Add(12 + 64 + item.Canonical.Length);
            }

            Records = Addresses.Count;
            var (code, output) = Run(["--audit-dir", Directory]);
            Assert.True(code == 0, output);
            Head = output.Split(' ')[4];
        }

        public Task DisposeAsync()
        {
            _dir.Dispose();
            return Task.CompletedTask;
        }

        public void Dispose() => _dir.Dispose();

        private sealed record HeadDto(long Seq, string Hash);
    }

    private static (int Code, string Output) Run(string[] args, bool export = false)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = export ? ExportCommand.Run(args, stdout, stderr) : VerifyCommand.Run(args, stdout, stderr);
        return (code, stdout.ToString() + stderr);
    }

    private string Copy(TempDir into)
    {
        var target = into.File("audit");
        foreach (var file in System.IO.Directory.GetFiles(log.Directory, "*", SearchOption.AllDirectories))
        {
            var to = Path.Combine(target, Path.GetRelativePath(log.Directory, file));
            System.IO.Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(file, to);
        }

        return target;
    }

    private static void Flip(string file, long offset)
    {
        using var f = new FileStream(file, FileMode.Open, FileAccess.ReadWrite);
        f.Position = offset;
        var b = f.ReadByte();
        f.Position = offset;
        f.WriteByte((byte)(b ^ 0x10));
    }

    /// <summary>The seq whose entry covers <paramref name="offset"/> (-1 before the first).</summary>
    private long RecordAt(long offset)
    {
        var seq = -1L;
        for (var i = 0; i < log.Addresses.Count && log.Addresses[i] <= offset; i++)
        {
            seq = i;
        }

        return seq;
    }

    [Fact]
    public void A_flipped_byte_anywhere_in_the_committed_records_is_invalid_with_its_seq_never_a_shorter_valid_log()
    {
        Assert.True(log.Records >= 300, $"{log.Records} records");
        // Up to the last record: a flip in the newest commit record alone is a torn tail by design
        // (nothing committed after it says otherwise; docs/audit-format.md, found by outside anchors).
        var end = log.Addresses[^1];
        // Every byte of one record's entry (FASTER header, prevHash, hash, canonical), and offsets spread over the whole log.
        var record = log.Addresses[150];
        var offsets = Enumerable.Range(0, log.Sizes[150]).Select(i => record + i)
            .Concat(Enumerable.Range(0, 120).Select(i => 64 + (i * (end - 64) / 120)))
            .Distinct().ToList();
        var invalid = 0;
        foreach (var offset in offsets)
        {
            using var dir = new TempDir();
            var copy = Copy(dir);
            Flip(Path.Combine(copy, "audit.log.0"), offset);
            var (code, output) = Run(["--audit-dir", copy]);
            var at = RecordAt(offset);
            if (code == 0)
            {
                // Only bytes no entry covers (alignment padding) may flip harmlessly, and then nothing is lost.
                Assert.True(output.StartsWith($"valid: {log.Records} records, head {log.Head}", StringComparison.Ordinal), $"offset {offset}: {output}");
                Assert.False(offset - log.Addresses[(int)at] < log.Sizes[(int)at], $"offset {offset} inside seq {at} verified: {output}");
                continue;
            }

            invalid++;
            Assert.True(code == 1, $"offset {offset}: exit {code}: {output}");
            var m = Broken().Match(output);
            Assert.True(m.Success, $"offset {offset}: {output}");
            var broken = long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
            // The record that holds the byte; a byte of a commit record or padding loses no record: the
            // records after it continue the chain and are kept, and the damage is named after the last.
            var inside = at >= 0 && offset - log.Addresses[(int)at] < log.Sizes[(int)at];
            Assert.True(inside ? broken == at : broken == log.Records, $"offset {offset} (in seq {at}, inside its entry: {inside}): {output}");
            Assert.Contains(broken == 0 ? "(no record verified before it)" : $"last good seq {broken - 1}", output, StringComparison.Ordinal);
            Assert.Contains("log address", output, StringComparison.Ordinal);
        }

        Assert.True(invalid > offsets.Count * 9 / 10, $"{invalid} of {offsets.Count} flips found");
    }

    [Fact]
    public async Task The_real_binary_names_the_damage_and_export_refuses_unless_salvage()
    {
        using var dir = new TempDir();
        var copy = Copy(dir);
        var offset = log.Addresses[5] + 100;
        Flip(Path.Combine(copy, "audit.log.0"), offset);

        var verify = await RunBinaryAsync("verify", "--audit-dir", copy);
        Assert.Equal(1, verify.Code);
        Assert.Matches($"^invalid: seq 5: log address {log.Addresses[5]} \\(audit.log.0 offset {log.Addresses[5]}\\): an entry that fails its checksum, but .* says the log was committed up to address \\d+: committed records cannot be read \\(last good seq 4, 5 records verified before it\\)$", verify.Stdout.Trim());

        var json = await RunBinaryAsync("verify", "--audit-dir", copy, "--json");
        Assert.Equal(1, json.Code);
        Assert.Contains("\"brokenSeq\":5,\"lastGoodSeq\":4,", json.Stdout, StringComparison.Ordinal);

        var export = await RunBinaryAsync("export", "--audit-dir", copy);
        Assert.Equal(1, export.Code);
        Assert.Equal(5, export.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.StartsWith($"export: the log is damaged: log address {log.Addresses[5]}", export.Stderr, StringComparison.Ordinal);

        var salvage = await RunBinaryAsync("export", "--audit-dir", copy, "--salvage");
        Assert.Equal(0, salvage.Code);
        Assert.StartsWith($"export: skipped (--salvage): log address {log.Addresses[5]}", salvage.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void A_flipped_byte_in_the_commit_metadata_file_is_invalid_naming_the_file()
    {
        var commits = System.IO.Directory.GetFiles(Path.Combine(log.Directory, "log-commits"));
        Assert.NotEmpty(commits);
        var name = Path.GetFileName(commits[0]);
        // The length prefix and the recovery info (version, checksum, begin, until, commit number, counts).
        for (var offset = 0; offset < 4 + 44; offset++)
        {
            using var dir = new TempDir();
            var copy = Copy(dir);
            Flip(Path.Combine(copy, "log-commits", name), offset);
            var (code, output) = Run(["--audit-dir", copy]);
            Assert.True(code == 1, $"offset {offset}: exit {code}: {output}");
            Assert.Contains($"log-commits/{name}: the commit file is damaged", output, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void A_shortened_or_deleted_tail_segment_is_invalid_with_the_last_good_seq()
    {
        using var dir = new TempDir();
        var copy = Copy(dir);
        var segment = Path.Combine(copy, "audit.log.0");
        using (var f = new FileStream(segment, FileMode.Open))
        {
            f.SetLength(log.Addresses[200] + 10);
        }

        var (code, output) = Run(["--audit-dir", copy]);
        Assert.True(code == 1, output);
        Assert.StartsWith("invalid: seq 200: log address", output, StringComparison.Ordinal);
        Assert.Contains("the data ends (audit.log.0 is", output, StringComparison.Ordinal);
        Assert.Contains("last good seq 199", output, StringComparison.Ordinal);

        File.Delete(segment);
        (code, output) = Run(["--audit-dir", copy]);
        Assert.True(code == 1, output);
        Assert.True(output.Contains("segment file audit.log.0 is missing", StringComparison.Ordinal), output);
    }

    [Fact]
    public void A_tail_cut_at_a_sector_boundary_is_found_unless_it_is_where_a_crash_ends_the_log_and_always_against_the_head_file()
    {
        using var dir = new TempDir();
        var copy = Copy(dir);
        var bytes = File.ReadAllBytes(Path.Combine(copy, "audit.log.0"));
        var cut = log.Addresses[250] / 512 * 512;
        using (var f = new FileStream(Path.Combine(copy, "audit.log.0"), FileMode.Open))
        {
            f.SetLength(cut);
        }

        // FASTER ends a segment at a page end or within the sector after a commit record: a cut there is
        // what a crash leaves (only an outside anchor can tell); anywhere else it is damage, with the
        // writer's head file taken away too. Where commit records fall depends on commit timing.
        var head = Path.Combine(copy, "head");
        var written = File.Exists(head) ? File.ReadAllText(head) : null;
        File.Delete(head);
        var (code, output) = Run(["--audit-dir", copy]);
        if (AuditCutSweepTests.EndsLikeFaster(bytes, cut))
        {
            Assert.True(code == 0, output);
        }
        else
        {
            Assert.True(code == 1, output);
            Assert.Contains("the segment was cut", output, StringComparison.Ordinal);
        }

        // The writer's head file is an anchor.
        var (seq, hash) = (log.Head.Split(':')[0], log.Head.Split(':')[1]);
        File.WriteAllText(head, written ?? $"chain 0123456789abcdef0123456789abcdef\nseq {seq}\nhash {hash}\nupdated 2026-12-01T10:00:00.000Z\n");
        (code, output) = Run(["--audit-dir", copy]);
        Assert.True(code == 1, output);
        Assert.True(output.Contains("the segment was cut", StringComparison.Ordinal) || output.Contains($"the head file is at seq {seq}", StringComparison.Ordinal), output);
    }

    [Fact]
    public void A_deleted_middle_segment_is_invalid_while_deleting_the_oldest_is_retention()
    {
        using var dir = new TempDir();
        var audit = dir.File("audit");
        var options = new AuditOptions { Directory = audit, SegmentSizeBits = 20, QueueCapacity = 1024 };
        using (var writer = AuditWriter.Open(options, TimeProvider.System))
        {
            AuditTestData.AppendDecisions(writer, 16_000);
        }

        var segments = System.IO.Directory.GetFiles(audit, "audit.log.*").Order(StringComparer.Ordinal).ToList();
        Assert.True(segments.Count >= 3, string.Join(",", segments));
        Assert.Equal(0, Run(["--audit-dir", audit]).Code);

        var middle = dir.File("middle");
        File.Move(Path.Combine(audit, "audit.log.1"), middle);
        var (code, output) = Run(["--audit-dir", audit]);
        Assert.True(code == 1, output);
        Assert.True(output.Contains("segment file audit.log.1 is missing", StringComparison.Ordinal), output);
        Assert.Matches(@"^invalid: seq \d+: log address 1048576 \(audit.log.1 offset 0\)", output);

        File.Move(middle, Path.Combine(audit, "audit.log.1"), overwrite: true);
        File.Delete(Path.Combine(audit, "audit.log.0"));
        (code, output) = Run(["--audit-dir", audit]);
        Assert.True(code == 0, output);
        Assert.Contains("older segments were dropped", output, StringComparison.Ordinal);
    }

    private static async Task<(int Code, string Stdout, string Stderr)> RunBinaryAsync(params string[] args)
    {
        var testBin = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var repo = testBin.Parent!.Parent!.Parent!.Parent!.Parent!.FullName;
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(Path.Combine(repo, "src", "ChronoGuard.Sidecar", "bin", testBin.Parent.Name, testBin.Name, "chronoguard.dll"));
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        using var p = Process.Start(info)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        return (p.ExitCode, await stdout, await stderr);
    }

    [GeneratedRegex(@"^invalid: seq (\d+): ")]
    private static partial Regex Broken();
}
