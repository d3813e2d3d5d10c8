using System.Collections;
using ChronoGuard.Sidecar.Cli;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Configuration.EnvironmentVariables;
using Microsoft.Extensions.Configuration.Json;

namespace ChronoGuard.Sidecar.Hosting;

/// <summary>
/// Checks the merged configuration against <see cref="ConfigurationSchema"/> before anything is bound:
/// unknown sections and keys, values of the wrong kind or out of range. The first problem becomes one
/// line naming where the value came from (file, environment variable or flag), the full key, the value
/// and what is allowed.
/// </summary>
internal static class ConfigurationValidator
{
    /// <returns>Null when the configuration is valid, else the line to print.</returns>
    public static string? Validate(IConfigurationRoot root, string? configFile, IDictionary environment)
    {
        if (MisspelledEnvironmentPrefix(environment) is { } misspelled)
        {
            return $"environment {misspelled}: not read, settings are {SidecarConfiguration.EnvironmentPrefix}Section__Key (for example {SidecarConfiguration.EnvironmentPrefix}Audit__Durability)";
        }

        // Only the sections our layers supply: the host adds keys of its own (contentRoot and the like).
        var ours = root.Providers.Where(p => p is JsonConfigurationProvider or EnvironmentVariablesConfigurationProvider or FixedConfigurationProvider).ToArray();
        var names = ours.SelectMany(p => p.GetChildKeys([], parentPath: null)).Distinct(StringComparer.OrdinalIgnoreCase).ToArray();
        foreach (var section in names.Select(root.GetSection))
        {
            var problem = string.Equals(section.Key, ConfigurationSchema.Logging, StringComparison.OrdinalIgnoreCase)
                ? CheckLogging(section, out var bad)
                : CheckSection(section, ours, out bad);
            if (problem is not null)
            {
                return $"{Source(root, bad!, configFile)}: {problem}";
            }
        }

        if (CheckInspection(root, out var blamed) is { } inspection)
        {
            return $"{Source(root, blamed, configFile)}: {inspection}";
        }

        if (CheckDns(root, out blamed) is { } dns)
        {
            return $"{Source(root, blamed, configFile)}: {dns}";
        }

        if (CheckAdmin(root, out blamed) is { } admin)
        {
            return $"{Source(root, blamed, configFile)}: {admin}";
        }

        if (CheckTransparent(root, out blamed) is { } transparent)
        {
            return $"{Source(root, blamed, configFile)}: {transparent}";
        }

        return null;
    }

    /// <summary>Settings that only mean something together (SPEC §7): the CA is a certificate and its key, and trust needs inspection on.</summary>
    private static string? CheckInspection(IConfigurationRoot root, out string blamed)
    {
        var cert = root["Inspection:CaCertFile"] ?? string.Empty;
        var key = root["Inspection:CaKeyFile"] ?? string.Empty;
        var trust = root["Inspection:UpstreamTrustFile"] ?? string.Empty;
        blamed = "Inspection:CaCertFile";
        if (cert.Length > 0 && key.Length == 0)
        {
            return "Inspection:CaCertFile is set but Inspection:CaKeyFile is not (inspection needs the CA's certificate and its key)";
        }

        blamed = "Inspection:CaKeyFile";
        if (key.Length > 0 && cert.Length == 0)
        {
            return "Inspection:CaKeyFile is set but Inspection:CaCertFile is not (inspection needs the CA's certificate and its key)";
        }

        blamed = "Inspection:UpstreamTrustFile";
        if (trust.Length > 0 && cert.Length == 0)
        {
            return "Inspection:UpstreamTrustFile is set but inspection is off (set Inspection:CaCertFile and Inspection:CaKeyFile)";
        }

        return null;
    }

    /// <summary>A transparent listener serves one agent (SPEC §10): redirected clients cannot log in.</summary>
    private static string? CheckTransparent(IConfigurationRoot root, out string blamed)
    {
        foreach (var key in (string[])["Transparent:Listen", "Transparent:Listen6"])
        {
            blamed = key;
            if (!string.IsNullOrEmpty(root[key]) && string.IsNullOrEmpty(root["Transparent:Agent"]))
            {
                return $"{key} is set but Transparent:Agent is empty (redirected connections cannot log in: name the agent they belong to)";
            }
        }

        blamed = "Transparent:Listen";
        return null;
    }

    /// <summary>
    /// The admin listener (SPEC §9) needs a token to accept, and is never the stats listener: the stats
    /// port is often exposed to scrapers that must not change grants.
    /// </summary>
    private static string? CheckAdmin(IConfigurationRoot root, out string blamed)
    {
        blamed = "Admin:Listen";
        var listen = root["Admin:Listen"];
        if (string.IsNullOrEmpty(listen))
        {
            return null;
        }

        if (!root.GetSection("Admin:TokenSha256").GetChildren().Any())
        {
            return "Admin:Listen is set but Admin:TokenSha256 lists no token (every request would be refused; add { \"Name\": ..., \"Sha256\": ... } from chronoguard hash-token)";
        }

        var stats = root["Stats:Listen"] ?? string.Empty;
        if (ChronoGuard.Net.Endpoints.TryParse(listen, out var admin) && ChronoGuard.Net.Endpoints.TryParse(stats, out var statsEndpoint)
            && admin.Port != 0 && admin.Port == statsEndpoint.Port)
        {
            return $"Admin:Listen {listen} is the stats port (Stats:Listen {stats}); the admin API is never served there";
        }

        return null;
    }

    /// <summary>The DNS guard needs an agent whose policies decide (SPEC §10), and a TTL floor under its ceiling.</summary>
    private static string? CheckDns(IConfigurationRoot root, out string blamed)
    {
        blamed = "Dns:Listen";
        if (string.IsNullOrEmpty(root["Dns:Listen"]))
        {
            return null;
        }

        if (string.IsNullOrEmpty(root["Dns:Agent"]) && string.IsNullOrEmpty(root["Transparent:Agent"]))
        {
            return "Dns:Listen is set but neither Dns:Agent nor Transparent:Agent names the agent whose policies decide the questions";
        }

        var min = int.TryParse(root["Dns:MinTtlSeconds"], System.Globalization.CultureInfo.InvariantCulture, out var m) ? m : new ChronoGuard.Proxy.DnsOptions().MinTtlSeconds;
        var max = int.TryParse(root["Dns:MaxTtlSeconds"], System.Globalization.CultureInfo.InvariantCulture, out var x) ? x : new ChronoGuard.Proxy.DnsOptions().MaxTtlSeconds;
        blamed = root["Dns:MinTtlSeconds"] is null ? "Dns:MaxTtlSeconds" : "Dns:MinTtlSeconds";
        return min > max ? $"Dns:MinTtlSeconds ({min}) is above Dns:MaxTtlSeconds ({max})" : null;
    }

    private static string? CheckSection(IConfigurationSection section, IConfigurationProvider[] layers, out string? bad)
    {
        bad = Blame(section);
        var rules = Array.Find(ConfigurationSchema.Sections, s => string.Equals(s.Section, section.Key, StringComparison.OrdinalIgnoreCase)).Rules;
        if (rules is null)
        {
            return $"{section.Path} is not a configuration section (allowed: {SectionNames()})";
        }

        // Per layer: a merged view would hide "Proxy": "x" in the file behind Proxy:Listen from a flag.
        foreach (var layer in layers)
        {
            if (layer.TryGet(section.Path, out var value) && !string.IsNullOrEmpty(value))
            {
                bad = section.Path;
                return $"{section.Path} must be an object of settings, not the value '{value}'";
            }
        }

        var children = section.GetChildren().ToArray();

        foreach (var child in children)
        {
            bad = Blame(child);
            var rule = Array.Find(rules, r => string.Equals(r.Key, child.Key, StringComparison.OrdinalIgnoreCase));
            if (rule is null)
            {
                return $"{child.Path} is not a setting (allowed in {section.Key}: {string.Join(", ", rules.Select(r => r.Key))})";
            }

            if ((rule.CheckNode is { } node ? node(child) : CheckValue(child, rule)) is { } problem)
            {
                return problem;
            }
        }

        return null;
    }

    /// <summary>
    /// The host's section: log levels (Logging:LogLevel:* and Logging:PROVIDER:LogLevel:*), and our own
    /// switches: Format (or the console logger's FormatterName) and Refusals. Other keys are the host's.
    /// </summary>
    private static string? CheckLogging(IConfigurationSection logging, out string? bad)
    {
        bad = null;
        foreach (var (node, rule) in new[]
        {
            (logging.GetSection(ConfigurationSchema.LogFormat.Key), ConfigurationSchema.LogFormat),
            (logging.GetSection("Console:" + ConfigurationSchema.ConsoleFormatter.Key), ConfigurationSchema.ConsoleFormatter),
            (logging.GetSection(ConfigurationSchema.LogRefusals.Key), ConfigurationSchema.LogRefusals),
        })
        {
            bad = Blame(node);
            if ((node.Value is not null || node.GetChildren().Any()) && CheckValue(node, rule) is { } problem)
            {
                return problem;
            }
        }

        var format = logging[ConfigurationSchema.LogFormat.Key];
        var formatter = logging["Console:" + ConfigurationSchema.ConsoleFormatter.Key];
        if (format is not null && formatter is not null && LogFormatOf(format) != LogFormatOf(formatter))
        {
            bad = logging.GetSection("Console:" + ConfigurationSchema.ConsoleFormatter.Key).Path;
            return $"{bad} '{formatter}' contradicts Logging:Format '{format}' (set one of them)";
        }

        foreach (var child in logging.GetChildren())
        {
            var levels = string.Equals(child.Key, ConfigurationSchema.LogLevel.Key, StringComparison.OrdinalIgnoreCase) ? child : child.GetSection(ConfigurationSchema.LogLevel.Key);
            foreach (var category in levels.GetChildren())
            {
                bad = Blame(category);
                if (CheckValue(category, ConfigurationSchema.LogLevel) is { } problem)
                {
                    return problem;
                }
            }
        }

        return null;
    }

    /// <summary>Whether a validated Logging:Format or Logging:Console:FormatterName value means one plain line per entry.</summary>
    internal static bool LogFormatOf(string? value) => value is not null && !string.Equals(value, "json", StringComparison.OrdinalIgnoreCase);

    private static string? CheckValue(IConfigurationSection setting, SettingRule rule)
    {
        if (setting.GetChildren().Any())
        {
            return $"{setting.Path} must be a single value, not an object or a list";
        }

        return rule.Check(setting.Value ?? string.Empty) is { } problem ? $"{setting.Path}: {problem}" : null;
    }

    /// <summary>CHRONOGUARD_X (one underscore) is a near miss of the prefix that would otherwise be ignored without a word.</summary>
    private static string? MisspelledEnvironmentPrefix(IDictionary environment)
    {
        const string Ours = "CHRONOGUARD_";
        foreach (DictionaryEntry variable in environment)
        {
            if (variable.Key is string name && name.StartsWith(Ours, StringComparison.OrdinalIgnoreCase)
                && !name.StartsWith(SidecarConfiguration.EnvironmentPrefix, StringComparison.OrdinalIgnoreCase))
            {
                return name;
            }
        }

        return null;
    }

    /// <summary>Which source supplied the value that wins (the last provider that has it), in the operator's terms.</summary>
    private static string Source(IConfigurationRoot root, string path, string? configFile)
    {
        var providers = root.Providers.ToArray();
        for (var i = providers.Length - 1; i >= 0; i--)
        {
            if (!providers[i].TryGet(path, out _))
            {
                continue;
            }

            return providers[i] switch
            {
                JsonConfigurationProvider => configFile ?? SidecarConfiguration.DefaultFile,
                EnvironmentVariablesConfigurationProvider => "environment " + SidecarConfiguration.EnvironmentPrefix + path.Replace(":", "__", StringComparison.Ordinal),
                FixedConfigurationProvider { Origin: FixedConfigurationProvider.Flags } => RunArguments.FlagFor(path) ?? FixedConfigurationProvider.Flags,
                FixedConfigurationProvider f => f.Origin,
                _ => "configuration",
            };
        }

        return "configuration";
    }

    /// <summary>The key whose layer a problem is blamed on: a node with children (a list where a value belongs, an unknown section) is blamed on its first leaf.</summary>
    private static string Blame(IConfigurationSection node) =>
        node.AsEnumerable().FirstOrDefault(kv => kv.Value is not null && kv.Key.Length > node.Path.Length).Key ?? node.Path;

    private static string SectionNames() =>
        string.Join(", ", ConfigurationSchema.Sections.Select(s => s.Section)) + ", " + ConfigurationSchema.Logging;
}
