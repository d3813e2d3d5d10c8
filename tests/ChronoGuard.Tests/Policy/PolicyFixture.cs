using ChronoGuard.Policy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Policy;

/// <summary>Compiles policy JSON text the way the sidecar loads a file.</summary>
internal static class PolicyFixture
{
    public const string Token = "s3cret-token";
    public static readonly string TokenSha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData("s3cret-token"u8));

    /// <param name="inspection">Inspection is configured (SPEC §7): <c>inspect</c> and <c>credentials</c> may load.</param>
    public static CompiledPolicy Compile(string json, AgentRegistry? registry = null, int maxTunnels = 512, bool inspection = true)
    {
        using var dir = new TempDir();
        var path = dir.File("policy.json");
        File.WriteAllText(path, json.Replace("$TOKEN", TokenSha, StringComparison.Ordinal));
        return PolicyLoader.Load(path, registry ?? new AgentRegistry(), maxTunnels, out _, inspection);
    }

    public static string LoadError(string json, bool inspection = true)
    {
        var ex = Assert.Throws<PolicyLoadException>(() => Compile(json, inspection: inspection));
        return ex.Message;
    }

    public static byte[] Basic(string agent, string token = Token) =>
        System.Text.Encoding.ASCII.GetBytes("Basic " + Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(agent + ":" + token)));
}
