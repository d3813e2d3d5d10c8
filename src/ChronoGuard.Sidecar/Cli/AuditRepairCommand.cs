using ChronoGuard.Audit;

namespace ChronoGuard.Sidecar.Cli;

/// <summary><c>chronoguard audit repair --audit-dir DIR</c>: moves a damaged log aside so a writer may start again.</summary>
internal static class AuditRepairCommand
{
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Length != 2 || args[0] != "--audit-dir")
        {
            var stray = args.Length == 0 || (args[0] == "--audit-dir" && args.Length < 2) ? null : args[0] != "--audit-dir" ? args[0] : args[2];
            stderr.WriteLine(stray is null
                ? "audit repair: usage: chronoguard audit repair --audit-dir DIR"
                : $"audit repair: {CommandLine.Unrecognised(stray, ["--audit-dir"])} (usage: chronoguard audit repair --audit-dir DIR)");
            return CommandLine.UsageError;
        }

        try
        {
            var outcome = AuditRepair.Run(args[1], TimeProvider.System);
            stdout.WriteLine(outcome.Message);
            return CommandLine.Ok;
        }
        catch (Exception ex) when (IoErrors.IsIo(ex))
        {
            stderr.WriteLine("audit repair: " + IoErrors.Line(args[1], ex));
            return CommandLine.UsageError;
        }
        catch (FASTER.core.FasterException ex)
        {
            // FASTER's own sentences (no runtime resource behind them).
            stderr.WriteLine($"audit repair: {args[1]}: the audit log cannot be read: {ex.Message.ReplaceLineEndings(" ")}");
            return CommandLine.UsageError;
        }
    }
}
