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
          chronoguard audit verify  --audit-dir DIR | --jsonl FILE | --csv FILE  [--key-file F] [--expect-head SEQ:HASH]
                                    [--checkpoints F --public-key K] [--json]
          chronoguard audit export  --audit-dir DIR [--format jsonl|csv] [--since T] [--until T] [--agent A]
                                    [--decision D[,D]] [--not-decision D[,D]] [--reason R[,R]] [--host GLOB]
                                    [--follow] [--salvage] [--out F]
          chronoguard audit repair  --audit-dir DIR   (moves a damaged log aside; the next start records the repair)
          chronoguard audit keygen  --out DIR   (checkpoint signing key pair, ECDSA P-256)
          chronoguard verify | export ...       (the same as audit verify | audit export)
          chronoguard ca init  --out DIR [--permit DOMAIN]... [--days N]   (CA for HTTPS inspection, ECDSA P-256)
          chronoguard policy check    FILE
          chronoguard policy explain  FILE --agent A --target HOST:PORT [--method M] [--path P] [--at ISO-8601] [--resolve]
          chronoguard policy suggest  --audit-dir DIR [--since T] [--agent A]   (a policy draft from the audit log)
          chronoguard denials         [--since T] [--agent A]   (refused destinations, from a running sidecar's admin API)
          chronoguard grant add       --agent A --domain D... (--for 1h | --expires T) --reason R
          chronoguard grant list | grant revoke ID    (runtime grants; admin API: --admin URL --token-file F,
                                      or CHRONOGUARD_ADMIN and CHRONOGUARD_ADMIN_TOKEN_FILE)
          chronoguard pending | approve ID [--for 1h] [--suffix] | deny ID   (requests held under "ask")
          chronoguard hash-token      (token on stdin; prints the lowercase hex SHA-256)
          chronoguard healthcheck     [--stats HOST:PORT] [--path /readyz]   (exit 0 when it answers 200)
          chronoguard --version | -V | --help | -h

        Every command takes -h/--help. Exit codes: 0 ok, 1 the check failed (invalid chain or policy,
        refused in explain), 2 usage or I/O error.
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
        var command = args[0];
        switch (command)
        {
            case "--version" or "-V" or "version":
                if (args.Length > 1 && !CommandHelp.Asked(args.AsSpan(1)))
                {
                    await stderr.WriteLineAsync($"version: unexpected argument '{args[1]}'").ConfigureAwait(false);
                    return UsageError;
                }

                await stdout.WriteLineAsync(args.Length > 1 ? CommandHelp.For("version") : "chronoguard " + Version).ConfigureAwait(false);
                return Ok;
            case "--help" or "-h" or "help":
                // "help policy check" is "policy check --help".
                var about = string.Join(' ', args[1..].Where(a => a is not ("-h" or "--help")));
                return await HelpAsync(about.Length == 0 ? "help" : about, stdout, stderr).ConfigureAwait(false);
        }

        var row = Array.Find(CommandHelp.Commands, c => c.Command == command);
        if (row.Command is null)
        {
            await stderr.WriteLineAsync("chronoguard: " + CommandHelp.Unknown("command", command, CommandHelp.Commands.Select(c => c.Command), "chronoguard")).ConfigureAwait(false);
            return UsageError;
        }

        // A command with subcommands is "command subcommand", whose help and errors name both.
        var rest = args[1..];
        if (row.Subcommands.Length > 0)
        {
            if (rest.Length == 0)
            {
                // One line: the help's usage line.
                await stderr.WriteLineAsync($"{command}: {CommandHelp.For(command)!.Split('\n')[0]}").ConfigureAwait(false);
                return UsageError;
            }

            if (rest[0] is "-h" or "--help")
            {
                await stdout.WriteLineAsync(CommandHelp.For(command)).ConfigureAwait(false);
                return Ok;
            }

            if (Array.IndexOf(row.Subcommands, rest[0]) < 0)
            {
                await stderr.WriteLineAsync($"{command}: " + CommandHelp.Unknown("subcommand", rest[0], row.Subcommands, "chronoguard " + command)).ConfigureAwait(false);
                return UsageError;
            }

            command += " " + rest[0];
            rest = rest[1..];
        }

        if (CommandHelp.Asked(rest))
        {
            await stdout.WriteLineAsync(CommandHelp.For(command)).ConfigureAwait(false);
            return Ok;
        }

        switch (command)
        {
            case "run":
                return await RunCommand.RunAsync(rest, stderr, CancellationToken.None).ConfigureAwait(false);
            case "verify" or "audit verify":
                return VerifyCommand.Run(rest, stdout, stderr);
            case "export" or "audit export":
                return ExportCommand.Run(rest, stdout, stderr);
            case "audit repair":
                return AuditRepairCommand.Run(rest, stdout, stderr);
            case "audit keygen":
                return AuditKeygenCommand.Run(rest, stdout, stderr);
            case "ca init":
                return CaCommand.Run(args[1..], stdout, stderr);
            case "policy check" or "policy explain" or "policy suggest":
                return PolicyCommand.Run(args[1..], stdout, stderr);
            case "denials":
                return await DenialsCommand.RunAsync(rest, stdout, stderr).ConfigureAwait(false);
            case "grant add" or "grant list" or "grant revoke":
                return await GrantCommand.RunAsync(command[6..], rest, stdout, stderr).ConfigureAwait(false);
            case "pending" or "approve" or "deny":
                return await ApprovalCommand.RunAsync(command, rest, stdout, stderr).ConfigureAwait(false);
            case "healthcheck":
                return await HealthcheckCommand.RunAsync(rest, stdout, stderr).ConfigureAwait(false);
            case "hash-token":
                return HashTokenCommand.Run(rest, Console.In, stdout, stderr);
            default:
                throw new InvalidOperationException($"{command} is in CommandHelp.Commands but not dispatched");
        }
    }

    /// <summary>The error for an argument a command does not take: an unknown option (with the nearest one) or a stray word.</summary>
    internal static string Unrecognised(string arg, IEnumerable<string> options) =>
        !arg.StartsWith('-') ? $"unexpected argument '{arg}'"
        : CommandHelp.Nearest(arg, options) is { } near ? $"unknown option '{arg}' (did you mean {near}?)"
        : $"unknown option '{arg}'";

    private static async Task<int> HelpAsync(string command, TextWriter stdout, TextWriter stderr)
    {
        if (CommandHelp.For(command) is not { } help)
        {
            await stderr.WriteLineAsync("help: " + CommandHelp.Unknown("command", command, CommandHelp.Commands.Select(c => c.Command), "chronoguard")).ConfigureAwait(false);
            return UsageError;
        }

        await stdout.WriteLineAsync(help).ConfigureAwait(false);
        return Ok;
    }

    public static string Version { get; } =
        typeof(CommandLine).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";
}
