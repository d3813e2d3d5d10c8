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

    /// <summary>One line for stderr: which file or key, and what is wrong with it.</summary>
    public static string Describe(Exception ex, string? configFile)
    {
        var file = configFile ?? DefaultFile;
        var message = ex.Message.ReplaceLineEndings(" ");
        if (ex is InvalidDataException or FormatException && ex.InnerException is { } inner)
        {
            message += " (" + inner.Message.ReplaceLineEndings(" ") + ")";
        }

        return ex is InvalidDataException ? $"{file}: {message}" : $"configuration: {message}";
    }
}
