using ChronoGuard.Policy;
using ChronoGuard.Proxy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Inspection;

/// <summary>
/// Real clients through an inspected tunnel, each told to trust ChronoGuard's CA the way a user would:
/// curl <c>--cacert</c>, Python's urllib with a CA file, git with <c>http.sslCAInfo</c>; and curl over
/// SOCKS5, since inspection does not depend on the way in.
/// </summary>
public sealed class InspectedClientTests
{
    private static (TestProxy Proxy, RecordingGate Records, InspectingGate Gate) Start(InspectionRig rig, string? denyPathPrefix = null, bool socks = false)
    {
        var records = new RecordingGate();
        var gate = new InspectingGate(records, InspectionRig.Host) { DenyPathPrefix = denyPathPrefix };
        var proxy = socks
            ? TestProxy.Start(gate: gate, resolver: rig.Resolver, inspection: rig.Inspection, listeners: new SocksConnectionFactory(null))
            : TestProxy.Start(gate: gate, resolver: rig.Resolver, inspection: rig.Inspection);
        return (proxy, records, gate);
    }

    [Fact]
    public async Task Curl_with_cacert_gets_allowed_paths_and_a_403_for_a_refused_one_over_one_tunnel()
    {
        await ExternalTools.EnsureAsync("curl");
        await using var rig = await InspectionRig.StartAsync();
        var (proxy, records, gate) = Start(rig, denyPathPrefix: "/admin");
        await using var _ = proxy;

        var (code, output) = await ExternalTools.RunAsync("curl",
        [
            "-sS", "--proxy", proxy.Uri.ToString(), "--cacert", rig.CaFile, "-H", "X-Probe: curl",
            "-w", "\n=%{http_code} %{num_connects}\n",
            rig.Url("/repos/a").ToString(), rig.Url("/admin/x").ToString(), rig.Url("/repos/b").ToString(),
        ], TimeSpan.FromSeconds(60));

        Assert.True(code == 0, output);
        Assert.Contains("GET /repos/a\n", output, StringComparison.Ordinal);
        Assert.Contains("X-Probe: curl", output, StringComparison.Ordinal);
        Assert.Contains("403 Forbidden: BLOCK " + Reasons.RuleDeny, output, StringComparison.Ordinal);
        Assert.Contains("GET /repos/b\n", output, StringComparison.Ordinal);
        // One connection, one CONNECT, three answers: 200, 403, 200.
        Assert.Equal(["=200 1", "=403 0", "=200 0"], output.Split('\n').Where(l => l.StartsWith('=')));
        Assert.Equal(1, gate.FrontEnds.Count(f => f == FrontEnd.Connect));
        Assert.Equal(["GET /repos/a", "GET /repos/b"], rig.Origin.Seen);
        Assert.Equal([("CONNECT", ""), ("GET", "/repos/a"), ("GET", "/admin/x"), ("GET", "/repos/b")], records.Requests);
    }

    [Fact]
    public async Task Curl_without_the_CA_refuses_the_proxy_leaf_and_nothing_reaches_the_origin()
    {
        await ExternalTools.EnsureAsync("curl");
        await using var rig = await InspectionRig.StartAsync();
        var (proxy, records, _) = Start(rig);
        await using var _ = proxy;

        // Trusting only the origin's CA: the leaf the proxy presents is not from it.
        var (code, output) = await ExternalTools.RunAsync("curl",
            ["-sS", "--proxy", proxy.Uri.ToString(), "--cacert", rig.OriginCaFile, rig.Url("/x").ToString()], TimeSpan.FromSeconds(60));

        Assert.NotEqual(0, code);
        Assert.Contains("certificate", output, StringComparison.OrdinalIgnoreCase);
        Assert.Empty(rig.Origin.Seen);
        await InspectedTunnelTests.WaitForAsync(() => proxy.Server.ActiveConnections == 0);
        Assert.Equal([("CONNECT", "")], records.Requests);
        Assert.Contains(ProxyReasons.ClientTlsFailed, records.Records.Select(r => r.Reason));
    }

    [Fact]
    public async Task Python_urllib_with_a_CA_file_sees_the_origin_and_the_refusal()
    {
        await ExternalTools.EnsureAsync("python3");
        await using var rig = await InspectionRig.StartAsync();
        var (proxy, _, _) = Start(rig, denyPathPrefix: "/admin");
        await using var _ = proxy;
        const string Script = """
            import ssl, sys, urllib.error, urllib.request
            context = ssl.create_default_context(cafile=sys.argv[1])
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({"https": sys.argv[2]}), urllib.request.HTTPSHandler(context=context))
            for url in sys.argv[3:]:
                try:
                    with opener.open(url, timeout=30) as response:
                        print(response.status, response.read().decode().splitlines()[0])
                except urllib.error.HTTPError as error:
                    print(error.code, error.headers.get("X-ChronoGuard-Decision"), error.headers.get("X-ChronoGuard-Reason"))
            """;

        var (code, output) = await ExternalTools.RunAsync("python3",
            ["-c", Script, rig.CaFile, proxy.Uri.ToString(), rig.Url("/v1/models").ToString(), rig.Url("/admin/keys").ToString()], TimeSpan.FromSeconds(60));

        Assert.True(code == 0, output);
        Assert.Equal(["200 GET /v1/models", "403 BLOCK " + Reasons.RuleDeny], output.Trim().Split('\n'));
        Assert.Equal(["GET /v1/models"], rig.Origin.Seen);
    }

    [Fact]
    public async Task Git_clones_over_HTTPS_with_sslCAInfo_through_the_inspected_tunnel()
    {
        await ExternalTools.EnsureAsync("git");
        await using var rig = await InspectionRig.StartAsync();
        var (proxy, records, _) = Start(rig);
        await using var _ = proxy;
        var home = rig.Dir.File("home");
        Directory.CreateDirectory(home);
        var work = rig.Dir.File("work");
        var bare = rig.Dir.File("served/repo.git");
        await GitAsync(home, "init", "-q", "-b", "main", work);
        await File.WriteAllTextAsync(Path.Combine(work, "README"), "through the sidecar\n");
        await GitAsync(home, "-C", work, "add", "README");
        await GitAsync(home, "-C", work, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "first");
        await GitAsync(home, "clone", "-q", "--bare", work, bare);
        await GitAsync(home, "-C", bare, "update-server-info");
        rig.Origin.FilesRoot = rig.Dir.File("served");

        var clone = rig.Dir.File("clone");
        await GitAsync(home, "-c", "http.proxy=" + proxy.Uri, "-c", "http.sslCAInfo=" + rig.CaFile, "clone", "-q", rig.Url("/files/repo.git").ToString(), clone);

        Assert.Equal("through the sidecar\n", await File.ReadAllTextAsync(Path.Combine(clone, "README")));
        Assert.Contains(("GET", "/files/repo.git/info/refs?service=git-upload-pack"), records.Requests);
        Assert.Contains("GET /files/repo.git/HEAD", rig.Origin.Seen);
    }

    [Fact]
    public async Task Curl_over_SOCKS5_is_inspected_like_over_CONNECT()
    {
        await ExternalTools.EnsureAsync("curl");
        await using var rig = await InspectionRig.StartAsync();
        var (proxy, records, gate) = Start(rig, denyPathPrefix: "/admin", socks: true);
        await using var _ = proxy;
        var socks = proxy.EndPointOf(1);

        var (code, output) = await ExternalTools.RunAsync("curl",
        [
            "-sS", "--proxy", $"socks5h://127.0.0.1:{socks.Port}", "--cacert", rig.CaFile, "-w", "\n=%{http_code}\n",
            rig.Url("/ok").ToString(), rig.Url("/admin").ToString(),
        ], TimeSpan.FromSeconds(60));

        Assert.True(code == 0, output);
        Assert.Contains("GET /ok\n", output, StringComparison.Ordinal);
        Assert.Equal(["=200", "=403"], output.Split('\n').Where(l => l.StartsWith('=')));
        Assert.Equal([FrontEnd.Socks, FrontEnd.Inspected, FrontEnd.Inspected], gate.FrontEnds);
        Assert.Equal([("SOCKS", ""), ("GET", "/ok"), ("GET", "/admin")], records.Requests);
        Assert.Equal(["GET /ok"], rig.Origin.Seen);
    }

    /// <summary>git with its own HOME and no system config; GIT_SSL_CAINFO (set on some machines) would override http.sslCAInfo.</summary>
    private static async Task GitAsync(string home, params string[] args)
    {
        var (code, output) = await ExternalTools.RunAsync("env", ["-u", "GIT_SSL_CAINFO", "HOME=" + home, "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0", "git", .. args], TimeSpan.FromSeconds(60));
        Assert.True(code == 0, $"git {string.Join(' ', args)}: {output}");
    }
}
