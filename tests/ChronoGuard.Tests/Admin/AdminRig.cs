using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.RegularExpressions;
using ChronoGuard.Tests.Policy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Admin;

/// <summary>The real sidecar with its admin listener on, an HTTP client for the admin API and a raw one for the proxy.</summary>
internal sealed partial class AdminRig : IAsyncDisposable
{
    public const string AliceToken = "alice-admin-token";
    public const string BobToken = "bob-admin-token";

    private AdminRig(SidecarProcess sidecar, IPEndPoint admin)
    {
        Sidecar = sidecar;
        Admin = admin;
        Http = new HttpClient { BaseAddress = new Uri($"http://{admin}") };
        Http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", AliceToken);
    }

    public SidecarProcess Sidecar { get; private set; }

    public IPEndPoint Admin { get; private set; }

    /// <summary>Authenticated as ops-alice.</summary>
    public HttpClient Http { get; private set; }

    public static string Sha(string token) => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    public static Dictionary<string, string> Environment(Dictionary<string, string>? more = null)
    {
        var env = new Dictionary<string, string>
        {
            ["CHRONOGUARD__Admin__Listen"] = "127.0.0.1:0",
            ["CHRONOGUARD__Admin__TokenSha256__0__Name"] = "ops-alice",
            ["CHRONOGUARD__Admin__TokenSha256__0__Sha256"] = Sha(AliceToken),
            ["CHRONOGUARD__Admin__TokenSha256__1__Name"] = "ops-bob",
            ["CHRONOGUARD__Admin__TokenSha256__1__Sha256"] = Sha(BobToken).ToUpperInvariant(),
            ["CHRONOGUARD__Policy__Watch"] = "false",
        };
        foreach (var (k, v) in more ?? [])
        {
            env[k] = v;
        }

        return env;
    }

    /// <summary>A policy: agent bot (token <see cref="PolicyFixture.Token"/>), defaultAction deny, loopback allowed by the guard on <paramref name="port"/>.</summary>
    public static string Policy(int port) => $$"""
        { "version": 1, "defaultAction": "deny",
          "network": { "allowedCidrs": ["127.0.0.0/8"], "allowedPorts": [443, {{port}}] },
          "agents": [ { "id": "bot", "tokenSha256": "{{PolicyFixture.TokenSha}}", "policies": ["p"] },
                      { "id": "other", "tokenSha256": "{{PolicyFixture.TokenSha}}", "policies": ["p"] } ],
          "policies": [ { "name": "p", "allowedDomains": ["allowed.test"], "blockedDomains": ["blocked.test"] } ] }
        """;

    public static async Task<AdminRig> StartAsync(TempDir dir, Dictionary<string, string>? environment = null)
    {
        var sidecar = await SidecarProcess.StartAsync(dir.Path, ["--policy", dir.File("policy.json")], Environment(environment));
        var line = await sidecar.WaitForOutputAsync(l => l.Contains("Admin:Listen listening on", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
        return new AdminRig(sidecar, IPEndPoint.Parse(AdminPattern().Match(line).Groups[1].Value));
    }

    /// <summary>Stops the sidecar (SIGTERM, exit 0) and starts it again on the same directory.</summary>
    public async Task RestartAsync(TempDir dir, Dictionary<string, string>? environment = null)
    {
        Sidecar.Signal("TERM");
        Assert.Equal(0, await Sidecar.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        await Sidecar.DisposeAsync();
        Http.Dispose();
        var next = await StartAsync(dir, environment);
        (Sidecar, Admin, Http) = (next.Sidecar, next.Admin, next.Http);
    }

    /// <summary>A CONNECT as agent <paramref name="agent"/>; the status and the audit seq of a refusal.</summary>
    public async Task<(int Status, long? Seq, string? Decision)> ConnectAsync(string host, int port, string agent = "bot")
    {
        using var client = await RawClient.ConnectAsync(Sidecar.ProxyEndPoint);
        var auth = Encoding.ASCII.GetString(PolicyFixture.Basic(agent));
        await client.SendAsync($"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\nProxy-Authorization: {auth}\r\n\r\n");
        var head = await client.ReadHeadAsync();
        return (head.Status, head["X-ChronoGuard-Audit-Seq"] is { } seq ? long.Parse(seq, System.Globalization.CultureInfo.InvariantCulture) : null, head["X-ChronoGuard-Decision"]);
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await Sidecar.DisposeAsync();
    }

    [GeneratedRegex(@"Admin:Listen listening on ([0-9.]+:[0-9]+)")]
    private static partial Regex AdminPattern();
}
