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
        var b = new List<byte> { 1 };
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
        foreach (var f in Text)
        {
            var s = Encoding.UTF8.GetBytes(r.GetProperty(f).GetString()!);
            b.Add((byte)(s.Length >> 8));
            b.Add((byte)s.Length);
            b.AddRange(s);
        }

        Int32(r.GetProperty("port").GetInt32());
        Int32(r.GetProperty("status").GetInt32());
        foreach (var f in new[] { "connId", "bytesUp", "bytesDown", "durationMs" })
        {
            Int64(r.GetProperty(f).GetInt64());
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

            var data = prev.Concat(Canonical(r)).ToArray();
            var h = key is null ? SHA256.HashData(data) : HMACSHA256.HashData(key, data);
            if (seq != expected || !Convert.FromHexString(r.GetProperty("prevHash").GetString()!).SequenceEqual(prev) || Convert.ToHexStringLower(h) != r.GetProperty("hash").GetString())
            {
                return $"broken at seq {seq}";
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
    }

    [Fact]
    public void The_documented_worked_example_hashes_as_the_page_says()
    {
        const string record = """{"seq":0,"ts":1795348800000000000,"kind":"decision","agent":"research-bot","sourceIp":"127.0.0.1","method":"CONNECT","host":"api.openai.com","port":443,"path":"","decision":"ALLOW","reason":"allowed","policy":"research","rule":"","status":200,"connId":1,"bytesUp":0,"bytesDown":0,"durationMs":0}""";
        using var doc = JsonDocument.Parse(record);
        var canonical = Canonical(doc.RootElement);
        var hash = SHA256.HashData(new byte[32].Concat(canonical).ToArray());

        var page = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "../../../../../docs/audit-format.md"));
        Assert.Equal(138, canonical.Length);
        Assert.Contains("has the 138-byte canonical encoding", page, StringComparison.Ordinal);
        Assert.Contains("hash = " + Convert.ToHexStringLower(hash), page, StringComparison.Ordinal);
    }
}
