using System.Reflection;

namespace ChronoGuard.Sidecar.Cli;

/// <summary>Dispatches the SPEC §3 commands. Exit codes: 0 ok, 1 check failed, 2 usage or I/O error.</summary>
internal static class CommandLine
{
    public const int Ok = 0;
    public const int CheckFailed = 1;
    public const int UsageError = 2;

    public const string Usage = """
        usage:
          chronoguard run      [--config FILE] [--policy FILE] [--listen HOST:PORT] [--stats HOST:PORT] [--audit-dir DIR]
          chronoguard verify   --audit-dir DIR | --jsonl FILE | --csv FILE  [--key-file F] [--expect-head SEQ:HASH]
                               [--checkpoints F --public-key K] [--json]
          chronoguard export   --audit-dir DIR [--format jsonl|csv] [--since T] [--until T] [--agent A] [--decision D] [--follow] [--salvage] [--out F]
          chronoguard audit keygen  --out DIR   (checkpoint signing key pair, ECDSA P-256)
          chronoguard audit repair  --audit-dir DIR   (moves a damaged log aside; the next start records the repair)
          chronoguard ca init  --out DIR [--permit DOMAIN]... [--days N]   (CA for HTTPS inspection, ECDSA P-256)
          chronoguard policy check    FILE
          chronoguard policy explain  FILE --agent A --target HOST:PORT [--method M] [--path P] [--at ISO-8601]
          chronoguard policy suggest  --audit-dir DIR [--since T] [--agent A]   (a policy draft from the audit log)
          chronoguard hash-token      (token on stdin; prints the lowercase hex SHA-256)
          chronoguard healthcheck     [--stats HOST:PORT] [--path /readyz]   (exit 0 when it answers 200)
          chronoguard --version | --help
        """;

    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Length == 0)
        {
            await stderr.WriteLineAsync(Usage).ConfigureAwait(false);
            return UsageError;
        }

        try
        {
            return await DispatchAsync(args, stdout, stderr).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // The commands turn the failures they expect into their own lines; nothing may still reach the
            // runtime, which would print a stack trace and exit 134 (and under NativeAOT a resource key).
            await stderr.WriteLineAsync(Unexpected(args[0] is "audit" or "ca" && args.Length > 1 ? args[0] + " " + args[1] : args[0], ex)).ConfigureAwait(false);
            return UsageError;
        }
    }

    /// <summary>One line for a failure a command did not turn into its own line; never the runtime's message.</summary>
    internal static string Unexpected(string command, Exception ex) => ex switch
    {
        _ when IoErrors.IsOwn(ex) => $"{command}: {ex.Message.ReplaceLineEndings(" ")}",
        FileNotFoundException { FileName: { } file } => $"{command}: {IoErrors.Line(file, ex)}",
        _ when IoErrors.IsIo(ex) => $"{command}: {IoErrors.Problem(ex, null)}",
        _ => $"{command}: failed with an unexpected {ex.GetType().Name}; please report it",
    };

    private static async Task<int> DispatchAsync(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var rest = args[1..];
        switch (args[0])
        {
            case "run":
                return await RunCommand.RunAsync(rest, stderr, CancellationToken.None).ConfigureAwait(false);
            case "verify":
                return VerifyCommand.Run(rest, stdout, stderr);
            case "export":
                return ExportCommand.Run(rest, stdout, stderr);
            case "audit" when rest.Length > 0 && rest[0] == "repair":
                return AuditRepairCommand.Run(rest[1..], stdout, stderr);
            case "audit" when rest.Length > 0 && rest[0] == "keygen":
                return AuditKeygenCommand.Run(rest[1..], stdout, stderr);
            case "ca":
                return CaCommand.Run(rest, stdout, stderr);
            case "policy":
                return PolicyCommand.Run(rest, stdout, stderr);
            case "healthcheck":
                return await HealthcheckCommand.RunAsync(rest, stdout, stderr).ConfigureAwait(false);
            case "hash-token":
                return HashTokenCommand.Run(rest, Console.In, stdout, stderr);
            case "--version":
            case "version":
                await stdout.WriteLineAsync("chronoguard " + Version).ConfigureAwait(false);
                return Ok;
            case "--help":
            case "-h":
            case "help":
                await stdout.WriteLineAsync(Usage).ConfigureAwait(false);
                return Ok;
            default:
                await stderr.WriteLineAsync($"chronoguard: unknown command '{args[0]}' (see chronoguard --help)").ConfigureAwait(false);
                return UsageError;
        }
    }

    public static string Version { get; } =
        typeof(CommandLine).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";
}
