using ChronoGuard.Policy;
using ChronoGuard.Tests.Policy;

namespace ChronoGuard.Tests.Support;

/// <summary>A real policy engine on a policy file in a temp dir ($TOKEN stands for the fixture token's hash).</summary>
internal sealed class PolicyEngines : IDisposable
{
    private readonly TempDir _dir = new();

    /// <param name="inspection">Inspection is configured (SPEC §7), so <c>inspect</c> and <c>credentials</c> load.</param>
    /// <param name="approvals">The admin API is on (SPEC §9), so <c>ask</c> loads.</param>
    public PolicyEngines(string json, int maxTunnels = 512, TimeProvider? time = null, bool inspection = true, bool approvals = true)
    {
        Path = _dir.File("policy.json");
        Write(json);
        Engine = new PolicyEngine(Path, maxTunnels, time ?? TimeProvider.System) { InspectionConfigured = inspection, ApprovalsConfigured = approvals };
        Assert.True(Engine.Reload().Ok);
    }

    public PolicyEngine Engine { get; }

    public string Path { get; }

    public void Write(string json) => File.WriteAllText(Path, json.Replace("$TOKEN", PolicyFixture.TokenSha, StringComparison.Ordinal));

    public void Reload(string json)
    {
        Write(json);
        Assert.True(Engine.Reload().Ok);
    }

    public static string Credentials(string agent = "bot") => "Proxy-Authorization: " + System.Text.Encoding.ASCII.GetString(PolicyFixture.Basic(agent)) + "\r\n";

    public void Dispose() => _dir.Dispose();
}
