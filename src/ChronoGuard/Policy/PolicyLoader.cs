using System.Security.Cryptography;
using System.Text.Json;

namespace ChronoGuard.Policy;

/// <summary>Reads, validates and compiles a policy file. Every error names the file and the JSON path.</summary>
internal static class PolicyLoader
{
    public const int MaxFileBytes = 16 * 1024 * 1024;

    /// <exception cref="PolicyLoadException">The file is unreadable or invalid.</exception>
    public static CompiledPolicy Load(string path, AgentRegistry registry, int maxTunnelsPerAgent, out string sha256)
    {
        byte[] bytes;
        try
        {
            var info = new FileInfo(path);
            if (info.Exists && info.Length > MaxFileBytes)
            {
                throw new PolicyLoadException($"{path}: file is larger than {MaxFileBytes} bytes");
            }

            bytes = File.ReadAllBytes(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new PolicyLoadException($"{path}: cannot read: {ex.Message}");
        }

        sha256 = Convert.ToHexStringLower(SHA256.HashData(bytes));
        PolicyDocument? document;
        try
        {
            document = JsonSerializer.Deserialize(bytes, PolicyJsonContext.Default.PolicyDocument);
        }
        catch (JsonException ex)
        {
            var where = ex.Path is { Length: > 0 } p ? p : "$";
            var line = ex.LineNumber is { } l ? $" (line {l + 1})" : string.Empty;
            throw new PolicyLoadException($"{path}: {where}{line}: {FirstSentence(ex.Message)}");
        }

        if (document is null)
        {
            throw new PolicyLoadException($"{path}: $: the file is empty or null");
        }

        return PolicyCompiler.Compile(document, path, sha256, registry, maxTunnelsPerAgent);
    }

    private static string FirstSentence(string message)
    {
        // System.Text.Json appends "Path: ... | LineNumber: ..." which the prefix already says.
        var cut = message.IndexOf(" Path:", StringComparison.Ordinal);
        return (cut > 0 ? message[..cut] : message).ReplaceLineEndings(" ").Trim();
    }
}
