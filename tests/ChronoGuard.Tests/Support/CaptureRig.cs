using System.Net;
using ChronoGuard.Audit;

namespace ChronoGuard.Tests.Support;

/// <summary>
/// A pod as SPEC §10 sets one up, inside a <see cref="NetNamespace"/>: the rules installed by the real
/// init script (deploy/init/chronoguard-init.sh, loopback excluded only as 127.0.0.1/32 so that
/// origins on 127.0.0.2… are captured), a fake resolver on 127.0.0.53:53 that /etc/resolv.conf names
/// (the agent's port-53 traffic to it is redirected to the guard; the sidecar's own lookups and its
/// Dns:Upstream reach it directly), and the real sidecar under its own UID with the DNS guard on
/// 127.0.0.1:15053 and, when asked, the transparent listener on 127.0.0.1:15001, both for agent "bot".
/// Everything the test runs inside the namespace as root is the agent.
/// </summary>
internal sealed class CaptureRig : IAsyncDisposable
{
    public const int SidecarUid = 1654;
    public const int TransparentPort = 15001;
    public const int DnsPort = 15053;
    public static readonly IPEndPoint Resolver = IPEndPoint.Parse("127.0.0.53:53");

    private readonly TempDir _work;
    private CaptureRig(NetNamespace ns, FakeResolver upstream, TempDir work, SidecarProcess sidecar)
    {
        Namespace = ns;
        Upstream = upstream;
        _work = work;
        Sidecar = sidecar;
    }

    public NetNamespace Namespace { get; }

    /// <summary>The resolver behind the guard: what it was asked is what left through DNS.</summary>
    public FakeResolver Upstream { get; }

    public SidecarProcess Sidecar { get; }

    /// <param name="policies">The <c>policies</c> array of the policy file (agent "bot" has every policy named "p").</param>
    /// <param name="zone">The fake resolver's zone (<c>name|TYPE|ttl|rdata</c>).</param>
    /// <param name="settings">More CHRONOGUARD__* settings for the sidecar.</param>
    /// <param name="initArgs">More flags for the init script (e.g. <c>--backend nft</c>).</param>
    /// <param name="agents">The <c>agents</c> array, when not just "bot" with the policy named "p".</param>
    public static async Task<CaptureRig> StartAsync(string policies, bool transparent, string[] zone, IReadOnlyDictionary<string, string>? settings = null, string? agents = null, params string[] initArgs)
    {
        var ns = await NetNamespace.CreateAsync();
        FakeResolver? upstream = null;
        TempDir? work = null;
        try
        {
            await ns.UseResolverAsync(Resolver.Address.ToString());
            await ns.InstallRulesAsync([
                "--sidecar-uid", SidecarUid.ToString(System.Globalization.CultureInfo.InvariantCulture),
                "--transparent-port", TransparentPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
                "--dns-port", DnsPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
                "--exclude-cidrs", "127.0.0.1/32",
                .. initArgs]);
            upstream = await FakeResolver.StartAsync(Resolver, ns.Enter, zone);

            work = new TempDir();
            var policy = work.File("policy.json");
            await File.WriteAllTextAsync(policy, $$"""
                { "version": 1, "network": { "allowPrivateDestinations": true, "allowedPorts": [80, 443] },
                  "agents": {{agents ?? $$"""[ { "id": "bot", "tokenSha256": "{{Policy.PolicyFixture.TokenSha}}", "policies": ["p"] } ]"""}},
                  "policies": {{policies}} }
                """);
            // The sidecar's user writes its audit there and runs with it as HOME.
            await ExternalTools.RunAsync("chown", ["-R", $"{SidecarUid}:{SidecarUid}", work.Path], TimeSpan.FromSeconds(10));
            var environment = new Dictionary<string, string>
            {
                ["HOME"] = work.Path,
                ["DOTNET_CLI_HOME"] = work.Path,
                ["CHRONOGUARD__Policy__Watch"] = "false",
                // Every refusal a test provokes is recorded: the bound per source is tested elsewhere.
                ["CHRONOGUARD__Audit__UnauthenticatedPerSecond"] = "1000",
                ["CHRONOGUARD__Transparent__Agent"] = "bot",
                ["CHRONOGUARD__Dns__Listen"] = $"127.0.0.1:{DnsPort}",
                ["CHRONOGUARD__Dns__Upstream"] = Resolver.ToString(),
            };
            if (transparent)
            {
                environment["CHRONOGUARD__Transparent__Listen"] = $"127.0.0.1:{TransparentPort}";
                environment["CHRONOGUARD__Transparent__ExcludeCidrs__0"] = "127.0.0.1/32";
            }

            foreach (var (k, v) in settings ?? new Dictionary<string, string>())
            {
                environment[k] = v;
            }

            var uid = SidecarUid.ToString(System.Globalization.CultureInfo.InvariantCulture);
            var sidecar = await SidecarProcess.StartAsync(work.Path, ["--policy", policy], environment,
                [.. ns.Enter, "setpriv", $"--reuid={uid}", $"--regid={uid}", "--clear-groups", "--"], SidecarProcess.AssemblyForOtherUsers);
            await sidecar.WaitForOutputAsync(l => l.Contains("DNS guard listening on", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
            if (transparent)
            {
                await sidecar.WaitForOutputAsync(l => l.Contains($"Transparent:Listen listening on 127.0.0.1:{TransparentPort}", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
            }

            return new CaptureRig(ns, upstream, work, sidecar);
        }
        catch
        {
            if (upstream is not null)
            {
                await upstream.DisposeAsync();
            }

            work?.Dispose();
            await ns.DisposeAsync();
            throw;
        }
    }

    /// <summary>Stops the sidecar cleanly (SIGTERM, exit 0) and returns its decision records.</summary>
    public async Task<List<AuditEntry>> StopAsync()
    {
        Sidecar.Signal("TERM");
        Assert.Equal(0, await Sidecar.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        return [.. AuditReader.ReadDirectory(Path.Combine(_work.Path, "audit")).Select(i => i.Entry!).Where(e => e.Kind == AuditKind.Decision)];
    }

    public async ValueTask DisposeAsync()
    {
        await Sidecar.DisposeAsync();
        await Upstream.DisposeAsync();
        await Namespace.DisposeAsync();
        _work.Dispose();
    }
}
