using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using ChronoGuard.Audit;

namespace ChronoGuard.Sidecar.Cli;

/// <summary>
/// <c>chronoguard verify</c>: walks the chain of an audit directory, a JSONL export or a CSV export.
/// Exit 0 valid, 1 invalid (anything wrong with the records or the log, with its seq), 2 usage or I/O.
/// </summary>
internal static class VerifyCommand
{
    private static readonly string[] Options = ["--audit-dir", "--jsonl", "--csv", "--key-file", "--expect-head", "--checkpoints", "--public-key", "--json"];

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        string? dir = null, jsonl = null, csv = null, keyFile = null, expect = null, checkpoints = null, publicKey = null;
        var json = false;
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            try
            {
                switch (args[i])
                {
                    case "--audit-dir": dir = Next(); break;
                    case "--jsonl": jsonl = Next(); break;
                    case "--csv": csv = Next(); break;
                    case "--key-file": keyFile = Next(); break;
                    case "--expect-head": expect = Next(); break;
                    case "--checkpoints": checkpoints = Next(); break;
                    case "--public-key": publicKey = Next(); break;
                    case "--json": json = true; break;
                    default: throw new ArgumentException(CommandLine.Unrecognised(args[i], Options));
                }
            }
            catch (ArgumentException ex)
            {
                stderr.WriteLine("verify: " + ex.Message);
                return CommandLine.UsageError;
            }
        }

        if ((dir is null ? 0 : 1) + (jsonl is null ? 0 : 1) + (csv is null ? 0 : 1) != 1)
        {
            stderr.WriteLine("verify: give exactly one of --audit-dir DIR, --jsonl FILE or --csv FILE");
            return CommandLine.UsageError;
        }

        if ((checkpoints is null) != (publicKey is null))
        {
            stderr.WriteLine("verify: --checkpoints F and --public-key K go together");
            return CommandLine.UsageError;
        }

        foreach (var file in new[] { jsonl, csv, keyFile, checkpoints, publicKey })
        {
            if (file is not null && !File.Exists(file))
            {
                stderr.WriteLine($"verify: {file}: {(Directory.Exists(file) ? "is a directory, not a file" : "no such file")}");
                return CommandLine.UsageError;
            }
        }

        if (dir is not null && !Directory.Exists(dir))
        {
            stderr.WriteLine($"verify: {dir}: {(File.Exists(dir) ? "is a file, not an audit directory" : "no such directory")}");
            return CommandLine.UsageError;
        }

        var anchors = new List<AuditVerifier.Anchor>();
        if (expect is not null)
        {
            var colon = expect.IndexOf(':', StringComparison.Ordinal);
            var hex = colon < 0 ? string.Empty : expect[(colon + 1)..];
            if (colon <= 0 || !long.TryParse(expect.AsSpan(0, colon), NumberStyles.None, CultureInfo.InvariantCulture, out var seq)
                || hex.Length != 64 || hex.ToLowerInvariant().AsSpan().IndexOfAnyExcept(AuditJson.LowerHex) >= 0)
            {
                stderr.WriteLine($"verify: --expect-head '{expect}' is not SEQ:HASH (64 hex digits)");
                return CommandLine.UsageError;
            }

            anchors.Add(new AuditVerifier.Anchor(seq, Convert.FromHexString(hex), "--expect-head", Required: true));
        }

        AuditVerifier.Result result;
        CheckpointFile.Contents? signed = null;
        // The file the next failure is about.
        var current = dir ?? jsonl ?? csv!;
        try
        {
            if (checkpoints is not null)
            {
                current = publicKey!;
                using var key = CheckpointKeys.LoadPublic(publicKey!);
                current = checkpoints;
                signed = CheckpointFile.Read(checkpoints, key);
                if (signed.Valid.Count == 0)
                {
                    var why = signed.Rejected.Count == 0 ? "it holds no checkpoint" : $"{signed.Rejected.Count} lines rejected, the first: {signed.Rejected[0]}";
                    Report(stdout, json, new AuditVerifier.Result(false, 0, -1, string.Empty, -1, $"{checkpoints}: no checkpoint signed by {publicKey} ({why})", -1), null);
                    return CommandLine.CheckFailed;
                }

                anchors.AddRange(CheckpointFile.Anchors(signed.Valid));
            }

            current = dir is null ? current : Path.Combine(dir, "head");
            if (dir is not null && HeadFile(dir) is { } head)
            {
                // Read before the log is opened: the writer updates it only after a commit, so it never
                // names more than the log held when the reader recovered it.
                anchors.Add(head);
            }

            current = keyFile ?? current;
            var hmac = AuditChain.ReadKey(keyFile);
            current = dir ?? jsonl ?? csv!;
            var items = dir is not null ? AuditReader.ReadDirectory(dir) : jsonl is not null ? AuditReader.ReadJsonl(jsonl) : AuditReader.ReadCsv(csv!);
            result = AuditVerifier.Verify(items, hmac, anchors);
        }
        catch (Exception ex) when (IoErrors.IsIo(ex))
        {
            stderr.WriteLine("verify: " + IoErrors.Line(current, ex));
            return CommandLine.UsageError;
        }
        catch (CryptographicException)
        {
            stderr.WriteLine($"verify: {current}: cannot be read as a key or signature");
            return CommandLine.UsageError;
        }
        catch (FASTER.core.FasterException ex)
        {
            // FASTER's own sentences (no runtime resource behind them).
            stderr.WriteLine($"verify: {current}: the audit log cannot be read: {ex.Message.ReplaceLineEndings(" ")}");
            return CommandLine.UsageError;
        }

        Report(stdout, json, result, signed);
        return result.Valid ? CommandLine.Ok : CommandLine.CheckFailed;
    }

    /// <summary>
    /// The writer's <c>head</c> file (lines <c>chain ID</c>, <c>seq N</c>, <c>hash H</c>): the last head it
    /// knew committed, kept outside FASTER's files so that a shortened or deleted tail is found. A file
    /// that does not parse names a head no chain can reach.
    /// </summary>
    private static AuditVerifier.Anchor? HeadFile(string dir)
    {
        var file = Path.Combine(dir, "head");
        if (!File.Exists(file))
        {
            return null;
        }

        long? seq = null;
        byte[]? hash = null;
        foreach (var line in File.ReadAllLines(file))
        {
            if (line.StartsWith("seq ", StringComparison.Ordinal) && long.TryParse(line.AsSpan(4), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var s))
            {
                seq = s;
            }
            else if (line.StartsWith("hash ", StringComparison.Ordinal) && line.Length == 5 + 64 && line.AsSpan(5).IndexOfAnyExcept(AuditJson.LowerHex) < 0)
            {
                hash = Convert.FromHexString(line.AsSpan(5));
            }
        }

        return seq is { } n && hash is not null
            ? n < 0 ? null : new AuditVerifier.Anchor(n, hash, "the head file", Required: true)
            : new AuditVerifier.Anchor(long.MaxValue, new byte[32], "the head file (it does not parse)", Required: true);
    }

    private static void Report(TextWriter stdout, bool json, AuditVerifier.Result result, CheckpointFile.Contents? signed)
    {
        if (json)
        {
            var buffer = new MemoryStream();
            using (var jw = new Utf8JsonWriter(buffer))
            {
                jw.WriteStartObject();
                jw.WriteBoolean("valid", result.Valid);
                jw.WriteNumber("records", result.Records);
                jw.WriteNumber("headSeq", result.HeadSeq);
                jw.WriteString("headHash", result.HeadHash);
                jw.WriteNumber("anchorSeq", result.AnchorSeq);
                if (signed is not null)
                {
                    jw.WriteNumber("checkpointsValid", signed.Valid.Count);
                    jw.WriteNumber("checkpointsRejected", signed.Rejected.Count);
                }

                if (!result.Valid)
                {
                    jw.WriteNumber("brokenSeq", result.BrokenSeq);
                    jw.WriteNumber("lastGoodSeq", result.Records == 0 ? -1 : result.HeadSeq);
                    jw.WriteString("problem", result.Problem);
                    if (result.Where is not null)
                    {
                        jw.WriteString("where", result.Where);
                    }
                }

                jw.WriteEndObject();
            }

            stdout.WriteLine(System.Text.Encoding.UTF8.GetString(buffer.ToArray()));
            return;
        }

        if (result.Valid)
        {
            var anchored = result.AnchorSeq > 0 ? $" (from seq {result.AnchorSeq}: older segments were dropped; its prevHash is taken as the anchor)" : string.Empty;
            var proof = signed is null ? string.Empty
                : $"; reaches the newest of {signed.Valid.Count} signed checkpoints (seq {signed.Valid.Max(c => c.Seq)}){(signed.Rejected.Count > 0 ? $", {signed.Rejected.Count} lines rejected (first: {signed.Rejected[0]})" : string.Empty)}";
            var lost = string.Concat(result.Lost.Select(r => $" (seq {r.From} to {r.To} lost, named by the record at seq {r.NamedBy})"));
            stdout.WriteLine($"valid: {result.Records} records, head {result.HeadSeq}:{result.HeadHash}{anchored}{lost}{proof}");
            return;
        }

        if (result.BrokenSeq < 0 && result.Where is null)
        {
            stdout.WriteLine($"invalid: {result.Problem}");
            return;
        }

        var at = result.BrokenSeq >= 0 ? $"seq {result.BrokenSeq}" : result.Where;
        var where = result.Where is not null && result.BrokenSeq >= 0 ? $"{result.Where}: " : string.Empty;
        var lastGood = result.Records == 0 ? "no record verified before it" : $"last good seq {result.HeadSeq}, {result.Records} records verified before it";
        stdout.WriteLine($"invalid: {at}: {where}{result.Problem} ({lastGood})");
    }
}
