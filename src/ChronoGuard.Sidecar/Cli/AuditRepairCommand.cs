using ChronoGuard.Audit;

namespace ChronoGuard.Sidecar.Cli;

/// <summary><c>chronoguard audit repair --audit-dir DIR</c>: moves a damaged log aside so a writer may start again.</summary>
internal static class AuditRepairCommand
{
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Length != 2 || args[0] != "--audit-dir")
        {
            stderr.WriteLine("audit repair: usage: chronoguard audit repair --audit-dir DIR");
            return CommandLine.UsageError;
        }

        try
        {
            var outcome = AuditRepair.Run(args[1], TimeProvider.System);
            stdout.WriteLine(outcome.Message);
            return CommandLine.Ok;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException or FASTER.core.FasterException)
        {
            stderr.WriteLine("audit repair: " + ex.Message.ReplaceLineEndings(" "));
            return CommandLine.UsageError;
        }
    }
}
