namespace ChronoGuard.Sidecar.Cli;

/// <summary>The flags of <c>run</c>, turned into configuration keys that override file and environment.</summary>
internal static class RunArguments
{
    private static readonly (string Flag, string Key)[] Flags =
    [
        ("--policy", "Policy:Path"),
        ("--listen", "Proxy:Listen"),
        ("--stats", "Stats:Listen"),
        ("--audit-dir", "Audit:Directory"),
    ];

    /// <summary>The flag that sets a configuration key, for error lines; null when no flag does.</summary>
    public static string? FlagFor(string key) =>
        Array.Find(Flags, f => string.Equals(f.Key, key, StringComparison.OrdinalIgnoreCase)).Flag;

    /// <returns>An error line, or null when the arguments are valid.</returns>
    public static string? TryParse(string[] args, out string? configFile, out Dictionary<string, string?> overrides)
    {
        configFile = null;
        overrides = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            if (!arg.StartsWith("--", StringComparison.Ordinal))
            {
                return $"run: unexpected argument '{arg}' (run takes only options; see chronoguard run --help)";
            }

            var eq = arg.IndexOf('=', StringComparison.Ordinal);
            var name = eq > 0 ? arg[..eq] : arg;
            string? value = eq > 0 ? arg[(eq + 1)..] : null;
            var key = name == "--config" ? null : Array.Find(Flags, f => f.Flag == name).Key;
            if (key is null && name != "--config")
            {
                return $"run: {CommandLine.Unrecognised(name, Flags.Select(f => f.Flag).Append("--config"))} (see chronoguard run --help)";
            }

            if (value is null)
            {
                if (i + 1 >= args.Length || args[i + 1].StartsWith("--", StringComparison.Ordinal))
                {
                    return $"run: {name} needs a value";
                }

                value = args[++i];
            }

            if (key is null)
            {
                configFile = value;
                continue;
            }

            overrides[key] = value;
        }

        return null;
    }
}
