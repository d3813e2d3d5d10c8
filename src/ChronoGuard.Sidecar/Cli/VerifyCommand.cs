using System.Globalization;
using System.Text.Json;
using ChronoGuard.Audit;

namespace ChronoGuard.Sidecar.Cli;

/// <summary><c>chronoguard verify</c>: walks the chain of an audit directory or a JSONL export.</summary>
internal static class VerifyCommand
{
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        string? dir = null, jsonl = null, keyFile = null, expect = null;
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
                    case "--key-file": keyFile = Next(); break;
                    case "--expect-head": expect = Next(); break;
                    case "--json": json = true; break;
                    default: throw new ArgumentException($"unknown option '{args[i]}'");
                }
            }
            catch (ArgumentException ex)
            {
                stderr.WriteLine("verify: " + ex.Message);
                return CommandLine.UsageError;
            }
        }

        if ((dir is null) == (jsonl is null))
        {
            stderr.WriteLine("verify: give exactly one of --audit-dir DIR or --jsonl FILE");
            return CommandLine.UsageError;
        }

        (long, string)? head = null;
        if (expect is not null)
        {
            var colon = expect.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0 || !long.TryParse(expect.AsSpan(0, colon), NumberStyles.None, CultureInfo.InvariantCulture, out var seq) || expect.Length - colon - 1 != 64)
            {
                stderr.WriteLine($"verify: --expect-head '{expect}' is not SEQ:HASH (64 hex digits)");
                return CommandLine.UsageError;
            }

            head = (seq, expect[(colon + 1)..]);
        }

        AuditVerifier.Result result;
        try
        {
            var key = AuditChain.ReadKey(keyFile);
            var items = dir is not null ? AuditReader.ReadDirectory(dir) : AuditReader.ReadJsonl(jsonl!);
            result = AuditVerifier.Verify(items, key, head);
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException or UnauthorizedAccessException or FASTER.core.FasterException)
        {
            stderr.WriteLine("verify: " + ex.Message.ReplaceLineEndings(" "));
            return CommandLine.UsageError;
        }

        if (json)
        {
            using var w = new Utf8JsonWriter(Console.OpenStandardOutput());
            var buffer = new MemoryStream();
            using (var jw = new Utf8JsonWriter(buffer))
            {
                jw.WriteStartObject();
                jw.WriteBoolean("valid", result.Valid);
                jw.WriteNumber("records", result.Records);
                jw.WriteNumber("headSeq", result.HeadSeq);
                jw.WriteString("headHash", result.HeadHash);
                jw.WriteNumber("anchorSeq", result.AnchorSeq);
                if (!result.Valid)
                {
                    jw.WriteNumber("brokenSeq", result.BrokenSeq);
                    jw.WriteString("problem", result.Problem);
                }

                jw.WriteEndObject();
            }

            stdout.WriteLine(System.Text.Encoding.UTF8.GetString(buffer.ToArray()));
        }
        else if (result.Valid)
        {
            var anchored = result.AnchorSeq > 0 ? $" (from seq {result.AnchorSeq}: older segments were dropped; its prevHash is taken as the anchor)" : string.Empty;
            stdout.WriteLine($"valid: {result.Records} records, head {result.HeadSeq}:{result.HeadHash}{anchored}");
        }
        else
        {
            stdout.WriteLine($"invalid: seq {result.BrokenSeq}: {result.Problem} ({result.Records} records verified before it)");
        }

        return result.Valid ? CommandLine.Ok : CommandLine.CheckFailed;
    }
}
