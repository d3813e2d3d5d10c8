using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using ChronoGuard.Sidecar.Cli;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Audit;

/// <summary>
/// A verifier written from docs/audit-format.md alone: it uses nothing of ChronoGuard's audit code, so
/// an error shared by the writer and the production verifier (which share the codec) shows up here.
/// </summary>
public sealed class IndependentVerifierTests
{
    private static readonly string[] Text = ["agent", "sourceIp", "method", "host", "path", "decision", "reason", "policy", "rule"];

    private static byte[] Canonical(JsonElement r)
    {
        // A line without "format" is format 1; format 2 adds dialedIp and two trailing bytes; format 3 adds credential after dialedIp.
        var version = r.TryGetProperty("format", out var f) ? f.GetInt32() : 1;
        var b = new List<byte> { (byte)version };
        void Int64(long v)
        {
            var x = new byte[8];
            BinaryPrimitives.WriteInt64BigEndian(x, v);
            b.AddRange(x);
        }

        void Int32(int v)
        {
            var x = new byte[4];
            BinaryPrimitives.WriteInt32BigEndian(x, v);
            b.AddRange(x);
        }

        Int64(r.GetProperty("seq").GetInt64());
        Int64(r.GetProperty("ts").GetInt64());
        b.Add(r.GetProperty("kind").GetString() switch { "decision" => 0, "close" => 1, "system" => 2, var k => throw new InvalidDataException(k) });
        foreach (var name in version switch { 2 => [.. Text, "dialedIp"], 3 => [.. Text, "dialedIp", "credential"], _ => Text })
        {
            var s = Encoding.UTF8.GetBytes(r.GetProperty(name).GetString()!);
            b.Add((byte)(s.Length >> 8));
            b.Add((byte)s.Length);
            b.AddRange(s);
        }

        Int32(r.GetProperty("port").GetInt32());
        Int32(r.GetProperty("status").GetInt32());
        foreach (var name in new[] { "connId", "bytesUp", "bytesDown", "durationMs" })
        {
            Int64(r.GetProperty(name).GetInt64());
        }

        if (version >= 2)
        {
            b.Add(r.GetProperty("enforced").GetBoolean() ? (byte)1 : (byte)0);
            b.Add(r.GetProperty("identity").GetString() switch { "" => 0, "credential" => 1, "unauthenticated" => 2, "listener" => 3, "transparent" when version == 3 => 4, var i => throw new InvalidDataException(i) });
        }

        return [.. b];
    }

    /// <summary>"valid: N records, head S:H" or "broken at seq S", like the docs' Python script.</summary>
    private static string IndependentVerify(IEnumerable<string> lines, byte[]? key)
    {
        byte[]? prev = null;
        long expected = 0, count = 0;
        foreach (var line in lines)
        {
            using var doc = JsonDocument.Parse(line);
            var r = doc.RootElement;
            var seq = r.GetProperty("seq").GetInt64();
            if (prev is null)
            {
                prev = seq == 0 ? new byte[32] : Convert.FromHexString(r.GetProperty("prevHash").GetString()!);
                expected = seq;
            }

            // time is for people and not hashed, but must render ts; it is left out only where ts has
            // no calendar rendering (years 0001-9999).
            var ticks = r.GetProperty("ts").GetInt64() / 100;
            var rendered = ticks >= DateTime.MinValue.Ticks - DateTime.UnixEpoch.Ticks && ticks <= DateTime.MaxValue.Ticks - DateTime.UnixEpoch.Ticks
                ? DateTime.UnixEpoch.AddTicks(ticks).ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", System.Globalization.CultureInfo.InvariantCulture)
                : null;
            if ((r.TryGetProperty("time", out var time) ? time.GetString() : null) != rendered)
            {
                return $"broken at seq {expected}";
            }

            // The one gap a chain may have: seqs handed out and never written, named exactly by the
            // system reason=lost record that follows them.
            if (seq > expected && r.GetProperty("kind").GetString() == "system" && r.GetProperty("reason").GetString() == "lost"
                && r.GetProperty("path").GetString()!.StartsWith($"seqs {expected}..{seq - 1}: ", StringComparison.Ordinal))
            {
                expected = seq;
            }

            var data = prev.Concat(Canonical(r)).ToArray();
            var h = key is null ? SHA256.HashData(data) : HMACSHA256.HashData(key, data);
            if (seq != expected || !Convert.FromHexString(r.GetProperty("prevHash").GetString()!).SequenceEqual(prev) || Convert.ToHexStringLower(h) != r.GetProperty("hash").GetString())
            {
                return $"broken at seq {expected}";
            }

            prev = h;
            expected++;
            count++;
        }

        return $"valid: {count} records, head {expected - 1}:{Convert.ToHexStringLower(prev ?? new byte[32])}";
    }

    private static (int Code, string Output) Cli(Func<TextWriter, TextWriter, int> run)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = run(stdout, stderr);
        return (code, stdout.ToString() + stderr);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void The_documented_verifier_agrees_with_verify_on_an_export_and_on_its_tampered_copy(bool hmac)
    {
        using var dir = new TempDir();
        string? keyFile = null;
        if (hmac)
        {
            keyFile = dir.File("key");
            File.WriteAllBytes(keyFile, RandomNumberGenerator.GetBytes(32));
        }

        AuditTestData.WriteAndExport(dir, 200, keyFile);
        var export = dir.File("export.jsonl");
        var exported = Cli((o, e) => ExportCommand.Run(["--audit-dir", dir.File("audit"), "--out", export], o, e));
        Assert.True(exported.Code == 0, exported.Output);
        var lines = File.ReadAllLines(export);
        Assert.Equal(200, lines.Length);
        var key = keyFile is null ? null : File.ReadAllBytes(keyFile);
        string[] keyArgs = keyFile is null ? [] : ["--key-file", keyFile];

        var independent = IndependentVerify(lines, key);
        var production = Cli((o, e) => VerifyCommand.Run(["--jsonl", export, .. keyArgs], o, e));
        Assert.StartsWith("valid: 200 records, head 199:", independent, StringComparison.Ordinal);
        Assert.Equal(0, production.Code);
        Assert.StartsWith(independent, production.Output, StringComparison.Ordinal);

        // One changed character in a hashed field: both must stop at the same seq.
        lines[123] = lines[123].Replace("h123.example.org", "h123.example.orh", StringComparison.Ordinal);
        File.WriteAllLines(export, lines);
        Assert.Equal("broken at seq 123", IndependentVerify(lines, key));
        var tampered = Cli((o, e) => VerifyCommand.Run(["--jsonl", export, .. keyArgs], o, e));
        Assert.Equal(1, tampered.Code);
        Assert.StartsWith("invalid: seq 123:", tampered.Output, StringComparison.Ordinal);

        // A line without its time (not hashed, but required where ts renders): both refuse it at its seq.
        lines[77] = System.Text.RegularExpressions.Regex.Replace(lines[77], "\"time\":\"[^\"]*\",", string.Empty);
        File.WriteAllLines(export, lines);
        Assert.Equal("broken at seq 77", IndependentVerify(lines, key));
        var timeless = Cli((o, e) => VerifyCommand.Run(["--jsonl", export, .. keyArgs], o, e));
        Assert.Equal(1, timeless.Code);
        Assert.StartsWith("invalid: seq 77: line 78: time is missing", timeless.Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"seq":0,"ts":1795348800000000000,"kind":"decision","agent":"research-bot","sourceIp":"127.0.0.1","method":"CONNECT","host":"api.openai.com","port":443,"path":"","decision":"ALLOW","reason":"allowed","policy":"research","rule":"","status":200,"connId":1,"bytesUp":0,"bytesDown":0,"durationMs":0}""", 138)]
    [InlineData("""{"seq":0,"ts":1795348800000000000,"kind":"decision","agent":"research-bot","sourceIp":"127.0.0.1","method":"CONNECT","host":"api.example.com","port":443,"path":"","decision":"BLOCK","reason":"private_destination","policy":"research","rule":"","status":200,"connId":1,"bytesUp":0,"bytesDown":0,"durationMs":0,"format":2,"dialedIp":"10.0.0.7","enforced":false,"identity":"credential"}""", 163)]
    public void The_documented_worked_examples_hash_as_the_page_says(string record, int length)
    {
        using var doc = JsonDocument.Parse(record);
        var canonical = Canonical(doc.RootElement);
        var hash = SHA256.HashData(new byte[32].Concat(canonical).ToArray());

        var page = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "../../../../../docs/audit-format.md"));
        Assert.Equal(length, canonical.Length);
        Assert.Contains($"has the {length}-byte canonical encoding", page, StringComparison.Ordinal);
        Assert.Contains("hash = " + Convert.ToHexStringLower(hash), page, StringComparison.Ordinal);

        // The production codec agrees byte for byte with the page.
        var timed = record.Replace("\"kind\":", "\"time\":\"2026-11-22T12:00:00.0000000Z\",\"kind\":", StringComparison.Ordinal);
        var entry = ChronoGuard.Audit.AuditJson.Parse(timed[..^1] + $$""","prevHash":"{{new string('0', 64)}}","hash":"{{Convert.ToHexStringLower(hash)}}"}""", out var problem, out _);
        Assert.True(entry is not null, problem);
        Assert.Equal(canonical, ChronoGuard.Audit.AuditCodec.Encode(entry));
    }

    [Fact]
    public void The_documented_verifier_and_verify_agree_on_a_format_1_export_made_before_format_2()
    {
        var lines = File.ReadAllLines(Path.Combine(AuditFixtures.V1, "v1.jsonl"));
        Assert.DoesNotContain(lines, l => l.Contains("\"format\"", StringComparison.Ordinal));
        var independent = IndependentVerify(lines, null);
        Assert.Equal("valid: 12 records, head 11:" + AuditFixtures.V1Head, independent);
        var production = Cli((o, e) => VerifyCommand.Run(["--jsonl", Path.Combine(AuditFixtures.V1, "v1.jsonl")], o, e));
        Assert.Equal(0, production.Code);
        Assert.StartsWith(independent, production.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void A_format_1_log_continued_by_the_format_2_writer_is_one_chain_for_both_verifiers()
    {
        using var dir = new TempDir();
        var audit = AuditFixtures.CopyV1Directory(dir);
        var options = new ChronoGuard.Audit.AuditOptions { Directory = audit, QueueCapacity = 64 };
        using (var writer = ChronoGuard.Audit.AuditWriter.Open(options, TimeProvider.System))
        {
            Assert.Equal(12, writer.RecoveredRecords);
            var r = default(ChronoGuard.Audit.AuditRecord);
            r.Kind = ChronoGuard.Audit.AuditKind.Decision;
            r.Identity = ChronoGuard.Audit.AuditIdentity.Unauthenticated;
            r.Enforced = false;
            r.Set(ChronoGuard.Audit.AuditText.DialedIp, "10.1.2.3");
            r.Set(ChronoGuard.Audit.AuditText.Decision, "DENY");
            writer.Append(ref r);
        }

        var lines = AuditTestData.Export(audit);
        Assert.Equal(13, lines.Count);
        Assert.DoesNotContain("\"format\"", lines[11], StringComparison.Ordinal);
        Assert.Contains("\"format\":2,\"dialedIp\":\"10.1.2.3\",\"enforced\":false,\"identity\":\"unauthenticated\"", lines[12], StringComparison.Ordinal);
        var export = dir.File("mixed.jsonl");
        File.WriteAllLines(export, lines);
        var independent = IndependentVerify(lines, null);
        Assert.StartsWith("valid: 13 records, head 12:", independent, StringComparison.Ordinal);
        foreach (var args in new[] { new[] { "--jsonl", export }, ["--audit-dir", audit] })
        {
            var production = Cli((o, e) => VerifyCommand.Run(args, o, e));
            Assert.Equal(0, production.Code);
            Assert.StartsWith(independent, production.Output, StringComparison.Ordinal);
        }
    }

    /// <summary>The Python verifier printed in docs/audit-format.md, as a reader would copy it.</summary>
    private static string DocumentedPythonVerifier()
    {
        var page = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "../../../../../docs/audit-format.md"));
        var start = page.IndexOf("```python\n", page.IndexOf("A verifier in Python", StringComparison.Ordinal), StringComparison.Ordinal) + "```python\n".Length;
        return page[start..page.IndexOf("```", start, StringComparison.Ordinal)];
    }

    private static string RunPython(string script, string jsonl)
    {
        using var process = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("python3", [script, jsonl])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEnd();
        Assert.True(process.WaitForExit(60_000), "python3 did not finish");
        return (stdout.Result + stderr).Trim();
    }

    /// <summary>A chain of JSON lines written by the production encoder, with the given records' seqs.</summary>
    private static List<string> Chain(params ChronoGuard.Audit.AuditEntry[] entries)
    {
        var lines = new List<string>();
        var prev = new byte[32];
        foreach (var e in entries)
        {
            e.PrevHash = prev;
            e.Hash = SHA256.HashData([.. prev, .. ChronoGuard.Audit.AuditCodec.Encode(e)]);
            prev = e.Hash;
            var buffer = new MemoryStream();
            using (var w = new Utf8JsonWriter(buffer))
            {
                ChronoGuard.Audit.AuditJson.Write(w, e);
            }

            lines.Add(Encoding.UTF8.GetString(buffer.ToArray()));
        }

        return lines;
    }

    private static ChronoGuard.Audit.AuditEntry Record(long seq, string reason = "allowed", string path = "", ChronoGuard.Audit.AuditKind kind = ChronoGuard.Audit.AuditKind.Decision) =>
        new() { Seq = seq, TimestampNs = 1_795_348_800_000_000_000 + seq, Kind = kind, Host = "h" + seq, Reason = reason, Path = path, Decision = "ALLOW", Status = 200 };

    public static TheoryData<string, string> Chains() => new()
    {
        { "plain", "" },
        { "named gap", "seqs 3..9: the stop could not commit them" },
        { "gap short by one", "seqs 3..8: short" },
        { "gap starting late", "seqs 4..9: late" },
        { "tampered", "" },
        { "time removed", "" },
        { "credential", "" },
        { "credential renamed", "" },
        { "transparent", "" },
        { "transparent renamed", "" },
    };

    /// <summary>
    /// The verifier a reader copies from the page, the independent C# one and <c>verify</c> give one
    /// answer for every chain: the page cannot drift from the product (a record without time, the one
    /// named gap a chain may have, and near misses of it).
    /// </summary>
    [Theory]
    [MemberData(nameof(Chains))]
    public void The_documented_python_verifier_the_independent_one_and_verify_agree(string name, string gap)
    {
        using var dir = new TempDir();
        var entries = new List<ChronoGuard.Audit.AuditEntry> { Record(0), Record(1), Record(2) };
        entries.Add(gap.Length > 0 ? Record(10, "lost", gap, ChronoGuard.Audit.AuditKind.System) : Record(3));
        entries.Add(Record(entries[^1].Seq + 1));
        if (name.StartsWith("credential", StringComparison.Ordinal))
        {
            // A format 3 record (it names a credential) between format 2 ones, as the writer mixes them.
            entries[2] = new ChronoGuard.Audit.AuditEntry { Format = 3, Seq = 2, TimestampNs = entries[2].TimestampNs, Kind = ChronoGuard.Audit.AuditKind.Decision, Host = "api.example", Decision = "ALLOW", Reason = "allowed", Status = 200, Credential = "github-api" };
        }

        if (name.StartsWith("transparent", StringComparison.Ordinal))
        {
            // A redirected connection's record (SPEC §10): format 3 for its identity alone, no credential.
            entries[2] = new ChronoGuard.Audit.AuditEntry { Format = 3, Seq = 2, TimestampNs = entries[2].TimestampNs, Kind = ChronoGuard.Audit.AuditKind.Decision, Agent = "bot", Host = "api.example", Method = "CONNECT", Decision = "ALLOW", Reason = "allowed", Status = 200, Identity = ChronoGuard.Audit.AuditIdentity.Transparent };
        }

        var lines = Chain([.. entries]);
        if (name == "transparent renamed")
        {
            lines[2] = lines[2].Replace("\"identity\":\"transparent\"", "\"identity\":\"listener\"", StringComparison.Ordinal);
            Assert.Contains("\"identity\":\"listener\"", lines[2], StringComparison.Ordinal);
        }
        else if (name == "credential renamed")
        {
            lines[2] = lines[2].Replace("\"credential\":\"github-api\"", "\"credential\":\"other-api\"", StringComparison.Ordinal);
            Assert.Contains("other-api", lines[2], StringComparison.Ordinal);
        }
        else if (name == "tampered")
        {
            lines[2] = lines[2].Replace("\"host\":\"h2\"", "\"host\":\"h9\"", StringComparison.Ordinal);
        }
        else if (name == "time removed")
        {
            lines[1] = System.Text.RegularExpressions.Regex.Replace(lines[1], "\"time\":\"[^\"]*\",", string.Empty);
        }

        var file = dir.File("chain.jsonl");
        File.WriteAllLines(file, lines);
        var script = dir.File("verify.py");
        File.WriteAllText(script, DocumentedPythonVerifier());

        var python = RunPython(script, file);
        var independent = IndependentVerify(lines, null);
        var production = Cli((o, e) => VerifyCommand.Run(["--jsonl", file], o, e));
        Assert.Equal(independent, python);
        if (independent.StartsWith("valid: ", StringComparison.Ordinal))
        {
            Assert.True(production.Code == 0, production.Output);
            Assert.StartsWith(independent, production.Output, StringComparison.Ordinal);
        }
        else
        {
            Assert.True(production.Code == 1, production.Output);
        }

        var valid = name is "plain" or "named gap" or "credential" or "transparent";
        Assert.Equal(valid, python.StartsWith("valid: ", StringComparison.Ordinal));
    }
}
