using System.Globalization;
using System.Text.Json;
using ChronoGuard.Audit;

namespace ChronoGuard.Sidecar.Cli;

/// <summary><c>chronoguard export</c>: an audit directory as JSONL or CSV, filtered, optionally following.</summary>
internal static class ExportCommand
{
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        string? dir = null, format = "jsonl", agent = null, decision = null, outFile = null;
        DateTimeOffset? since = null, until = null;
        var follow = false;
        var salvage = false;
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            DateTimeOffset Time(string v) => DateTimeOffset.TryParse(v, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t) ? t : throw new ArgumentException($"'{v}' is not an ISO-8601 time");
            try
            {
                switch (args[i])
                {
                    case "--audit-dir": dir = Next(); break;
                    case "--format": format = Next(); break;
                    case "--since": since = Time(Next()); break;
                    case "--until": until = Time(Next()); break;
                    case "--agent": agent = Next(); break;
                    case "--decision": decision = Next(); break;
                    case "--out": outFile = Next(); break;
                    case "--follow": follow = true; break;
                    case "--salvage": salvage = true; break;
                    default: throw new ArgumentException($"unknown option '{args[i]}'");
                }
            }
            catch (ArgumentException ex)
            {
                stderr.WriteLine("export: " + ex.Message);
                return CommandLine.UsageError;
            }
        }

        if (dir is null || format is not ("jsonl" or "csv"))
        {
            stderr.WriteLine("export: --audit-dir DIR is required; --format is jsonl or csv");
            return CommandLine.UsageError;
        }

        TextWriter output;
        try
        {
            output = outFile is null ? stdout : new StreamWriter(outFile, append: false);
        }
        catch (Exception ex) when (IoErrors.IsIo(ex))
        {
            stderr.WriteLine("export: " + IoErrors.Line(outFile!, ex));
            return CommandLine.UsageError;
        }

        // What the next failure is about: the log while reading, the output while writing.
        var target = dir;
        var outputName = outFile ?? "standard output";
        try
        {
            if (format == "csv")
            {
                output.WriteLine(string.Join(',', AuditJson.Columns));
            }

            bool Keep(AuditEntry e) =>
                (since is null || e.Time >= since) && (until is null || e.Time < until)
                && (agent is null || e.Agent == agent) && (decision is null || string.Equals(e.Decision, decision, StringComparison.OrdinalIgnoreCase));
            var buffer = new MemoryStream();
            var skipped = new HashSet<string>(StringComparer.Ordinal);
            long address = 0;
            using var stop = new CancellationTokenSource();
            Console.CancelKeyPress += (_, e) =>
            {
                e.Cancel = true;
                stop.Cancel();
            };
            do
            {
                foreach (var item in AuditReader.ReadDirectory(dir, address, next => address = next, salvage))
                {
                    if (item.Entry is not { } entry)
                    {
                        // Damage is never an end of the log that looks normal: refuse, or with --salvage
                        // skip it and say exactly what was skipped.
                        var what = $"{(item.Seq >= 0 ? $"seq {item.Seq} at " : string.Empty)}{item.Where}: {item.Problem}";
                        if (!salvage)
                        {
                            target = outputName;
                            output.Flush();
                            stderr.WriteLine($"export: the log is damaged: {what}; the records before it were exported; run chronoguard verify, or export --salvage to skip damaged records");
                            return CommandLine.CheckFailed;
                        }

                        if (skipped.Add(what))
                        {
                            stderr.WriteLine($"export: skipped (--salvage): {what}");
                        }

                        continue;
                    }

                    if (!Keep(entry))
                    {
                        continue;
                    }

                    string line;
                    if (format == "csv")
                    {
                        line = AuditJson.Csv(entry);
                    }
                    else
                    {
                        buffer.SetLength(0);
                        using (var w = new Utf8JsonWriter(buffer))
                        {
                            AuditJson.Write(w, entry);
                        }

                        line = System.Text.Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
                    }

                    target = outputName;
                    output.WriteLine(line);
                    target = dir;
                }

                target = outputName;
                output.Flush();
                target = dir;
            }
            while (follow && !stop.Token.WaitHandle.WaitOne(500));

            // Closed here, not only in finally, so that the last buffered lines failing to reach a full
            // disk is reported like any other write.
            target = outputName;
            if (outFile is not null)
            {
                output.Dispose();
            }
        }
        catch (Exception ex) when (IoErrors.IsIo(ex))
        {
            stderr.WriteLine("export: " + IoErrors.Line(target, ex));
            return CommandLine.UsageError;
        }
        catch (FASTER.core.FasterException ex)
        {
            // FASTER's own sentences (no runtime resource behind them).
            stderr.WriteLine($"export: {dir}: the audit log cannot be read: {ex.Message.ReplaceLineEndings(" ")}");
            return CommandLine.UsageError;
        }
        finally
        {
            if (outFile is not null)
            {
                try
                {
                    output.Dispose();
                }
                catch (Exception ex) when (IoErrors.IsIo(ex))
                {
                    // Only after a failure already reported: a clean run closed the file inside the try.
                }
            }
        }

        return CommandLine.Ok;
    }
}
