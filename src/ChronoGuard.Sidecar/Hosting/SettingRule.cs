using System.Globalization;
using ChronoGuard.Net;
using Microsoft.Extensions.Configuration;

namespace ChronoGuard.Sidecar.Hosting;

/// <summary>What one configuration key accepts, checked on the raw string before anything is bound.</summary>
internal sealed class SettingRule
{
    private readonly Func<string, string?> _check;

    private SettingRule(string key, Func<string, string?> check, Func<IConfigurationSection, string?>? checkNode = null)
    {
        Key = key;
        _check = check;
        CheckNode = checkNode;
    }

    /// <summary>For a key that holds a list of objects: checks the whole node (null for single values).</summary>
    public Func<IConfigurationSection, string?>? CheckNode { get; }

    /// <summary>The key inside its section, as the options class spells it.</summary>
    public string Key { get; }

    /// <returns>Null when the value is allowed, else the problem and what is allowed, in words.</returns>
    public string? Check(string value) => _check(value);

    public static SettingRule Number(string key, int min, int max) => new(key, value =>
        !int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n)
            ? $"'{value}' is not a whole number (allowed: {min}..{max})"
            : n < min || n > max ? $"{n} is out of range (allowed: {min}..{max})" : null);

    /// <summary>A byte count: a whole number from <paramref name="min"/> on, or 0 where 0 means "none".</summary>
    public static SettingRule Bytes(string key, long min) => new(key, value =>
        !long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n)
            ? $"'{value}' is not a whole number of bytes (allowed: 0 for unbounded, or at least {min})"
            : n != 0 && n < min ? $"{n} is too small (allowed: 0 for unbounded, or at least {min})" : null);

    public static SettingRule Choice(string key, params string[] allowed) => new(key, value =>
    {
        foreach (var a in allowed)
        {
            if (string.Equals(value, a, StringComparison.OrdinalIgnoreCase))
            {
                return null;
            }
        }

        return $"'{value}' is not allowed (allowed: {string.Join(", ", allowed)})";
    });

    public static SettingRule Flag(string key) => new(key, value =>
        bool.TryParse(value, out _) ? null : $"'{value}' is not allowed (allowed: true, false)");

    public static SettingRule Endpoint(string key) => new(key, value =>
        Endpoints.TryParse(value, out _) ? null : $"'{value}' is not HOST:PORT (allowed: an IP address, [IPv6], localhost or *, then a port 0-65535)");

    /// <summary>An endpoint that may be empty (the listener is off, or <paramref name="empty"/> says what empty means).</summary>
    public static SettingRule OptionalEndpoint(string key, string empty = "empty for off") => new(key, value =>
        value.Length == 0 || Endpoints.TryParse(value, out _) ? null : $"'{value}' is not HOST:PORT (allowed: {empty}, or an IP address, [IPv6], localhost or *, then a port 0-65535)");

    /// <summary>
    /// A list of agent-bound listeners (SPEC §8): entries 0, 1, … each with exactly <c>Listen</c>
    /// (HOST:PORT) and <c>Agent</c> (an agent id, checked against the policy at start), and with
    /// <paramref name="withUid"/> (transparent listeners, SPEC §10) <c>Uid</c>, the user the rules redirect.
    /// </summary>
    public static SettingRule Listeners(string key, bool withUid = false)
    {
        var shape = withUid ? "{ \"Listen\": HOST:PORT, \"Agent\": id, \"Uid\": user id }" : "{ \"Listen\": HOST:PORT, \"Agent\": id }";
        var fields = withUid ? "Listen, Agent, Uid" : "Listen, Agent";
        var all = withUid ? 7 : 3;
        return new(key, _ => $"must be a list of {shape} objects", node =>
        {
            if (!string.IsNullOrEmpty(node.Value))
            {
                return $"{node.Path}: must be a list of {shape} objects";
            }

            var listen = Endpoint("Listen");
            var uid = Number("Uid", 0, int.MaxValue);
            foreach (var entry in node.GetChildren())
            {
                if (!int.TryParse(entry.Key, NumberStyles.None, CultureInfo.InvariantCulture, out _) || entry.Value is not null)
                {
                    return $"{entry.Path}: must be a list of {shape} objects";
                }

                var seen = 0;
                foreach (var field in entry.GetChildren())
                {
                    if (string.Equals(field.Key, "Listen", StringComparison.OrdinalIgnoreCase))
                    {
                        seen |= 1;
                        if (listen.Check(field.Value ?? string.Empty) is { } problem)
                        {
                            return $"{field.Path}: {problem}";
                        }
                    }
                    else if (string.Equals(field.Key, "Agent", StringComparison.OrdinalIgnoreCase))
                    {
                        seen |= 2;
                        if (string.IsNullOrWhiteSpace(field.Value))
                        {
                            return $"{field.Path}: is empty (an agent id from the policy file is required)";
                        }
                    }
                    else if (withUid && string.Equals(field.Key, "Uid", StringComparison.OrdinalIgnoreCase))
                    {
                        seen |= 4;
                        if (uid.Check(field.Value ?? string.Empty) is { } problem)
                        {
                            return $"{field.Path}: {problem}";
                        }
                    }
                    else
                    {
                        return $"{field.Path} is not a setting (allowed in a listener: {fields})";
                    }
                }

                if (seen != all)
                {
                    return $"{entry.Path}: needs {(withUid ? "Listen, Agent and Uid" : "both Listen and Agent")}";
                }
            }

            return null;
        });
    }

    /// <summary>
    /// <c>Admin:TokenSha256</c> (SPEC §9): entries 0, 1, … each exactly <c>Name</c> (the actor, unique,
    /// not empty) and <c>Sha256</c> (64 hex digits: the SHA-256 of the token, never the token itself).
    /// </summary>
    public static SettingRule Tokens(string key)
    {
        const string shape = "{ \"Name\": actor, \"Sha256\": hex } objects";
        return new(key, value => value.Length == 0 ? null : $"'{value}' is not a list (allowed: a list of {shape})", node =>
        {
            if (!string.IsNullOrEmpty(node.Value))
            {
                return $"{node.Path}: must be a list of {shape}";
            }

            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (var entry in node.GetChildren())
            {
                if (!int.TryParse(entry.Key, NumberStyles.None, CultureInfo.InvariantCulture, out _) || entry.Value is not null)
                {
                    return $"{entry.Path}: must be a list of {shape}";
                }

                var seen = 0;
                foreach (var field in entry.GetChildren())
                {
                    if (string.Equals(field.Key, "Name", StringComparison.OrdinalIgnoreCase))
                    {
                        seen |= 1;
                        if (string.IsNullOrWhiteSpace(field.Value))
                        {
                            return $"{field.Path}: is empty (the name is recorded as the actor)";
                        }

                        if (!names.Add(field.Value))
                        {
                            return $"{field.Path}: '{field.Value}' is named twice (each token needs its own name)";
                        }
                    }
                    else if (string.Equals(field.Key, "Sha256", StringComparison.OrdinalIgnoreCase))
                    {
                        seen |= 2;
                        var hex = field.Value ?? string.Empty;
                        if (hex.Length != 64 || !hex.All(char.IsAsciiHexDigit))
                        {
                            // Never echo it: a token pasted here by mistake must not reach a log.
                            return $"{field.Path}: is not 64 hex digits (the SHA-256 of the token, from chronoguard hash-token; never the token itself)";
                        }
                    }
                    else
                    {
                        return $"{field.Path} is not a setting (allowed in a token: Name, Sha256)";
                    }
                }

                if (seen != 3)
                {
                    return $"{entry.Path}: needs both Name and Sha256";
                }
            }

            return null;
        });
    }

    /// <summary>A list of CIDR blocks (<c>10.0.0.0/8</c>, <c>::1/128</c>): entries 0, 1, … each one block.</summary>
    public static SettingRule CidrList(string key) => new(key, value =>
        value.Length == 0 ? null : $"'{value}' is not a list (allowed: a list of CIDR blocks such as [\"127.0.0.0/8\", \"::1/128\"])", node =>
    {
        if (!string.IsNullOrEmpty(node.Value))
        {
            return $"{node.Path}: '{node.Value}' is not a list (allowed: a list of CIDR blocks such as [\"127.0.0.0/8\", \"::1/128\"]; in the environment, {node.Path.Replace(":", "__", StringComparison.Ordinal)}__0=127.0.0.0/8)";
        }

        foreach (var entry in node.GetChildren())
        {
            if (!int.TryParse(entry.Key, NumberStyles.None, CultureInfo.InvariantCulture, out _) || entry.Value is null)
            {
                return $"{entry.Path}: must be a CIDR block such as 127.0.0.0/8";
            }

            // The address must be the block's own (no host bits): "10.0.0.1/8" is a typo the parser would widen.
            var slash = entry.Value.IndexOf('/', StringComparison.Ordinal);
            if (!System.Net.IPNetwork.TryParse(entry.Value, out var block) || slash < 0
                || !System.Net.IPAddress.TryParse(entry.Value.AsSpan(0, slash), out var given) || !given.Equals(block.BaseAddress))
            {
                return $"{entry.Path}: '{entry.Value}' is not a CIDR block (allowed: ADDRESS/PREFIX with no host bits set, such as 127.0.0.0/8 or ::1/128)";
            }
        }

        return null;
    });

    /// <summary>A path or name; <paramref name="required"/> refuses the empty string (JSON null reads as empty).</summary>
    public static SettingRule Text(string key, bool required) => new(key, value =>
        required && string.IsNullOrWhiteSpace(value) ? "is empty (a value is required)" : null);
}
