using Microsoft.Extensions.Configuration;

namespace ChronoGuard.Sidecar.Hosting;

/// <summary>Configuration sources in SPEC §3 order: embedded defaults, file, CHRONOGUARD__ environment, flags.</summary>
internal static class SidecarConfiguration
{
    public const string DefaultFile = "chronoguard.json";
    public const string EnvironmentPrefix = "CHRONOGUARD__";

    private static readonly Dictionary<string, string?> Defaults = new(StringComparer.OrdinalIgnoreCase)
    {
        ["Proxy:Listen"] = "127.0.0.1:3128",
        ["Stats:Listen"] = "127.0.0.1:9477",
        ["Audit:Directory"] = "./chronoguard-audit",
        ["Logging:LogLevel:Default"] = "Information",
    };

    public static void Add(IConfigurationBuilder configuration, string? configFile, Dictionary<string, string?> overrides)
    {
        configuration.Add(new FixedConfigurationSource(FixedConfigurationProvider.Defaults, Defaults));
        if (configFile is not null)
        {
            configuration.AddJsonFile(Path.GetFullPath(configFile), optional: false, reloadOnChange: false);
        }
        else
        {
            configuration.AddJsonFile(Path.GetFullPath(DefaultFile), optional: true, reloadOnChange: false);
        }

        configuration.AddEnvironmentVariables(EnvironmentPrefix);
        configuration.Add(new FixedConfigurationSource(FixedConfigurationProvider.Flags, overrides));
    }

    /// <summary>
    /// One line for stderr when building the configuration failed after <see cref="ConfigurationFile.Check"/>
    /// passed (the file changed in between): which file, and what, in our words, never the provider's
    /// message (a resource key under NativeAOT).
    /// </summary>
    public static string Describe(Exception ex, string? configFile)
    {
        var file = configFile ?? DefaultFile;
        return ex switch
        {
            InvalidDataException or FormatException => ConfigurationFile.Check(file) ?? $"{file}: cannot be read as JSON configuration",
            _ when IoErrors.IsIo(ex) => $"{file}: cannot read the config file: {IoErrors.Problem(ex, file)}",
            _ => $"configuration: failed with an unexpected {ex.GetType().Name}",
        };
    }
}
