using System.Text.Json;
using ChronoGuard.Audit;

namespace ChronoGuard.Sidecar.Cli;

/// <summary><c>chronoguard export</c>: an audit directory as JSONL or CSV, filtered, optionally following.</summary>
internal static class ExportCommand
{
    private static readonly string[] FilterOptions = ["--since", "--until", "--agent", "--decision", "--not-decision", "--reason", "--host"];

    private static readonly string[] Options = [.. FilterOptions, "--audit-dir", "--format", "--out", "--follow", "--salvage"];

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        string? dir = null, format = "jsonl", outFile = null;
        var filter = new ExportFilter();
        var now = DateTimeOffset.UtcNow;
        var follow = false;
        var salvage = false;
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            try
            {
                var option = args[i];
                switch (option)
                {
                    case "--audit-dir": dir = Next(); break;
                    case "--format": format = Next(); break;
                    case "--out": outFile = Next(); break;
                    case "--follow": follow = true; break;
                    case "--salvage": salvage = true; break;
                    default:
                        if (Array.IndexOf(FilterOptions, option) < 0 || !filter.TrySet(option, Next(), now))
                        {
                            throw new ArgumentException(CommandLine.Unrecognised(option, Options));
                        }

                        break;
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

                    if (!filter.Keep(entry))
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
