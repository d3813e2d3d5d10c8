using System.Reflection;
using System.Text.Json;

namespace ChronoGuard.Policy;

/// <summary>
/// The presets embedded in this assembly (Policy/Presets/*.json), read once on first use. Only the
/// compiler and explain read them, never the decision path: a preset's patterns are compiled into the
/// same automaton and masks as <c>allowedDomains</c>.
/// </summary>
internal static class PolicyPresets
{
    private const string Prefix = "ChronoGuard.Policy.Presets.";

    private static readonly Lazy<Dictionary<string, PolicyPreset>> Loaded = new(Load);

    public static IReadOnlyDictionary<string, PolicyPreset> All => Loaded.Value;

    /// <summary>The preset names, sorted, for error messages and docs.</summary>
    public static string Names => string.Join(", ", Loaded.Value.Keys.Order(StringComparer.Ordinal));

    public static bool TryGet(string name, out PolicyPreset preset) => Loaded.Value.TryGetValue(name, out preset!);

    private static Dictionary<string, PolicyPreset> Load()
    {
        var assembly = typeof(PolicyPresets).Assembly;
        var presets = new Dictionary<string, PolicyPreset>(StringComparer.Ordinal);
        foreach (var resource in assembly.GetManifestResourceNames())
        {
            if (!resource.StartsWith(Prefix, StringComparison.Ordinal) || !resource.EndsWith(".json", StringComparison.Ordinal))
            {
                continue;
            }

            var preset = Parse(resource, Read(assembly, resource));
            presets.Add(preset.Name, preset);
        }

        return presets;
    }

    private static byte[] Read(Assembly assembly, string resource)
    {
        using var stream = assembly.GetManifestResourceStream(resource)!;
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    /// <summary>
    /// A preset file is part of the build, so a bad one is a bug in the repository, not in a user's
    /// policy: it throws, and the per-preset tests find it before a release does.
    /// </summary>
    internal static PolicyPreset Parse(string resource, byte[] utf8)
    {
        using var json = JsonDocument.Parse(utf8, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip });
        var root = json.RootElement;
        var name = root.GetProperty("name").GetString()!;
        var domains = new List<string>();
        foreach (var d in root.GetProperty("domains").EnumerateArray())
        {
            var raw = d.GetString()!;
            if (DomainNames.TryNormalizeEntry(raw, out var pattern) is { } error)
            {
                throw new InvalidDataException($"{resource}: domains: \"{raw}\": {error}");
            }

            domains.Add(pattern);
        }

        var sources = new List<string>();
        foreach (var s in root.GetProperty("sources").EnumerateArray())
        {
            sources.Add(s.GetString()!);
        }

        if (!resource.EndsWith($".{name}.json", StringComparison.Ordinal) || domains.Count == 0 || sources.Count == 0)
        {
            throw new InvalidDataException($"{resource}: the name must match the file name, and domains and sources must not be empty");
        }

        return new PolicyPreset
        {
            Name = name,
            Version = root.GetProperty("version").GetInt32(),
            Description = root.GetProperty("description").GetString()!,
            Sources = [.. sources],
            Domains = [.. domains],
        };
    }
}
