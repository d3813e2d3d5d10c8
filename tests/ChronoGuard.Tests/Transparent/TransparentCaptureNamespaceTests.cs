using System.Net;
using System.Net.Sockets;
using System.Text;
using ChronoGuard.Audit;
using ChronoGuard.Proxy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Transparent;

/// <summary>
/// SPEC §10 as a pod gets it: a private network namespace with the rules of
/// deploy/init/chronoguard-init.sh, the real sidecar under its own UID, and real clients that were
/// given no proxy at all (curl --noproxy, Python's urllib, Node's fetch, ssh). They resolve through
/// /etc/resolv.conf (redirected to the DNS guard) and connect straight to origins on 127.0.0.2…; the
/// kernel hands each connection to the transparent listener, which decides it as agent "bot" and
/// records it with identity transparent.
/// </summary>
public sealed class TransparentCaptureNamespaceTests
{
    private const string Policies = """[ { "name": "p", "allowedDomains": ["allowed.test", "git.test:22"], "blockedDomains": ["evil.test"] } ]""";

    private static readonly string[] Zone =
        ["allowed.test|A|300|127.0.0.2", "evil.test|A|300|127.0.0.2", "git.test|A|300|127.0.0.3"];

    [NamespaceFact]
    public async Task Curl_with_noproxy_reaches_an_allowed_name_and_is_refused_by_name_by_the_guard_or_by_the_listener()
    {
        await ExternalTools.EnsureAsync("curl");
        await using var rig = await CaptureRig.StartAsync(Policies, transparent: true, Zone);
        var seen = new List<string>();
        await using var origin = HttpOrigin(rig.Namespace, "127.0.0.2", seen);

        var (code, body) = await Curl(rig, "http://allowed.test/");
        Assert.True(code == 0 && body == "hello from 127.0.0.2", $"{code} {body}");
        (code, body) = await Curl(rig, "http://evil.test/");
        Assert.True(code == 6, $"evil.test resolved: {code} {body}"); // curl: could not resolve host
        // Told the address some other way, the name in Host is still the agent's to be refused.
        (code, body) = await Curl(rig, "-i", "--resolve", "evil.test:80:127.0.0.2", "http://evil.test/");
        Assert.Contains("HTTP/1.1 403", body, StringComparison.Ordinal);
        Assert.Contains("X-ChronoGuard-Decision: BLOCK", body, StringComparison.Ordinal); // blockedDomains

        var records = await rig.StopAsync();
        Assert.Equal(["GET / allowed.test"], seen);
        Assert.Equal(
            [("GET", "allowed.test", 80, "127.0.0.2", "ALLOW", 200), ("GET", "evil.test", 80, "127.0.0.2", "BLOCK", 403)],
            Transparent(records).Select(r => (r.Method, r.Host, r.Port, r.DialedIp, r.Decision, r.Status)));
        Assert.All(Dns(records), r => Assert.Equal(("evil.test", ProxyReasons.DnsNameRefused), (r.Host, r.Reason)));
        Assert.NotEmpty(Dns(records));
        Assert.DoesNotContain(rig.Upstream.Questions, q => q.Contains("evil.test", StringComparison.Ordinal));
    }

    [NamespaceFact]
    public async Task Python_urllib_with_no_proxy_set_is_captured_allowed_by_name_and_refused_for_an_IP_no_policy_names()
    {
        await using var rig = await CaptureRig.StartAsync(Policies, transparent: true, Zone);
        var seen = new List<string>();
        await using var origin = HttpOrigin(rig.Namespace, "127.0.0.2", seen);

        var (code, output) = await rig.Namespace.RunAsync("/usr/bin/python3", ["-c", """
            import urllib.request, urllib.error
            print(urllib.request.urlopen('http://allowed.test/', timeout=20).read().decode())
            for url in ('http://127.0.0.2/', 'http://evil.test/'):
                try:
                    urllib.request.urlopen(url, timeout=20)
                    print(url, 'OPENED')
                except urllib.error.HTTPError as e:
                    print(url, e.code, e.headers['X-ChronoGuard-Reason'])
                except urllib.error.URLError as e:
                    print(url, 'unresolved')
            """]);
        Assert.True(code == 0, output);
        // An IP literal in Host is a name like any other: no policy lists it.
        Assert.Equal(["hello from 127.0.0.2", "http://127.0.0.2/ 403 default_deny", "http://evil.test/ unresolved"], output.Trim().Split('\n'));

        var records = await rig.StopAsync();
        Assert.Equal(["GET / allowed.test"], seen);
        Assert.Equal(
            [("GET", "allowed.test", "ALLOW", "allowed"), ("GET", "127.0.0.2", "DENY", "default_deny")],
            Transparent(records).Select(r => (r.Method, r.Host, r.Decision, r.Reason)));
    }

    [NamespaceFact]
    public async Task Nodes_builtin_fetch_with_no_proxy_variables_is_captured_and_decided()
    {
        await ExternalTools.EnsureAsync("node");
        await using var rig = await CaptureRig.StartAsync(Policies, transparent: true, Zone);
        var seen = new List<string>();
        await using var origin = HttpOrigin(rig.Namespace, "127.0.0.2", seen);

        var (code, output) = await rig.Namespace.RunAsync("node", ["-e", """
            (async () => {
              const ok = await fetch('http://allowed.test/');
              console.log(ok.status, await ok.text());
              const refused = await fetch('http://127.0.0.2/');
              console.log(refused.status, refused.headers.get('x-chronoguard-decision'), refused.headers.get('x-chronoguard-reason'));
              try { await fetch('http://evil.test/'); console.log('evil.test fetched'); } catch (e) { console.log('evil.test', e.cause?.code); }
            })();
            """]);
        Assert.True(code == 0, output);
        Assert.Equal(["200 hello from 127.0.0.2", "403 DENY default_deny", "evil.test ENOTFOUND"], output.Trim().Split('\n'));

        var records = await rig.StopAsync();
        Assert.Equal(["GET / allowed.test"], seen);
        Assert.Equal(
            [("GET", "allowed.test", "ALLOW"), ("GET", "127.0.0.2", "DENY")],
            Transparent(records).Select(r => (r.Method, r.Host, r.Decision)));
    }

    [NamespaceFact]
    public async Task Ssh_to_a_loopback_sshd_is_allowed_on_a_port_scoped_pattern_by_the_name_the_DNS_guard_answered()
    {
        await ExternalTools.EnsureAsync("ssh", "sshd", "ssh-keygen");
        await using var rig = await CaptureRig.StartAsync(Policies, transparent: true, Zone);
        var key = await StartSshdAsync(rig.Namespace, "127.0.0.3", "127.0.0.4");
        string[] ssh = ["-i", key, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=20"];

        var (code, output) = await rig.Namespace.RunAsync("ssh", [.. ssh, "root@git.test", "echo", "through-transparent"], TimeSpan.FromSeconds(60));
        Assert.True(code == 0 && output.Trim() == "through-transparent", $"ssh git.test: {code} {output}");
        // allowed.test is allowed on 80 and 443 only: port 22 there is refused (its address has no sshd, and nothing is dialed).
        (code, output) = await rig.Namespace.RunAsync("ssh", [.. ssh, "root@allowed.test", "echo", "should-not-run"], TimeSpan.FromSeconds(60));
        Assert.True(code != 0 && !output.Contains("should-not-run", StringComparison.Ordinal), $"ssh allowed.test:22: {code} {output}");

        // The same sshd on an address no name was answered for: SSH carries no name, so the destination is
        // the IP literal, and port 22 is allowed only by the name's port-scoped pattern.
        (code, output) = await rig.Namespace.RunAsync("ssh", [.. ssh, "root@127.0.0.4", "echo", "should-not-run"], TimeSpan.FromSeconds(60));
        Assert.True(code != 0 && !output.Contains("should-not-run", StringComparison.Ordinal), $"ssh 127.0.0.4: {code} {output}");

        var records = await rig.StopAsync();
        var tunnels = Transparent(records).Select(r => (r.Method, r.Host, r.Port, r.DialedIp, r.Decision, r.Reason)).ToList();
        Assert.Equal(3, tunnels.Count);
        Assert.Equal(("TRANSPARENT", "git.test", 22, "127.0.0.3", "ALLOW"), (tunnels[0].Method, tunnels[0].Host, tunnels[0].Port, tunnels[0].DialedIp, tunnels[0].Decision));
        Assert.Equal(("TRANSPARENT", "allowed.test", 22, "127.0.0.2"), (tunnels[1].Method, tunnels[1].Host, tunnels[1].Port, tunnels[1].DialedIp));
        Assert.NotEqual("ALLOW", tunnels[1].Decision);
        Assert.Equal(("TRANSPARENT", 22, "127.0.0.4", "BLOCK", "port_not_allowed"), (tunnels[2].Method, tunnels[2].Port, tunnels[2].DialedIp, tunnels[2].Decision, tunnels[2].Reason));
    }

    [NamespaceFact]
    public async Task An_allowed_name_sent_to_a_foreign_address_is_a_name_address_mismatch_and_a_nameless_ClientHello_to_it_is_unresolved()
    {
        await ExternalTools.EnsureAsync("curl");
        await using var rig = await CaptureRig.StartAsync(Policies, transparent: true, Zone);
        var seen = new List<string>();
        await using var foreign = HttpOrigin(rig.Namespace, "127.0.0.9", seen); // would answer, if anything reached it

        var (code, output) = await Curl(rig, "-k", "--resolve", "allowed.test:443:127.0.0.9", "https://allowed.test/");
        Assert.True(code == 35, $"curl https: {code} {output}"); // TLS handshake failed: the alert
        Assert.Contains("access denied", output, StringComparison.OrdinalIgnoreCase);
        (code, output) = await Curl(rig, "-i", "--resolve", "allowed.test:80:127.0.0.9", "http://allowed.test/");
        Assert.Contains("HTTP/1.1 403", output, StringComparison.Ordinal);
        Assert.Contains($"X-ChronoGuard-Reason: {ProxyReasons.NameAddressMismatch}", output, StringComparison.Ordinal);

        // curl sends no SNI for an IP literal: a ClientHello with no name, to an address no name was answered for.
        (code, output) = await Curl(rig, "-k", "https://127.0.0.9/");
        Assert.True(code == 35, $"curl https://127.0.0.9/: {code} {output}");

        var records = await rig.StopAsync();
        Assert.Empty(seen);
        Assert.Equal(
            [
                ("TRANSPARENT", "allowed.test", 443, "127.0.0.9", ProxyReasons.NameAddressMismatch),
                ("GET", "allowed.test", 80, "127.0.0.9", ProxyReasons.NameAddressMismatch),
                ("TRANSPARENT", "127.0.0.9", 443, "127.0.0.9", ProxyReasons.UnresolvedDestination),
            ],
            Transparent(records).Select(r => (r.Method, r.Host, r.Port, r.DialedIp, r.Reason)));
        Assert.All(Transparent(records), r => Assert.Equal(("BLOCK", 403), (r.Decision, r.Status)));
    }

    [NamespaceFact]
    public async Task A_ClientHello_that_never_ends_is_answered_with_an_alert_after_the_header_timeout_and_recorded()
    {
        // The half ClientHello must arrive before the sidecar's silence (Transparent:FirstBytesMs) or
        // header clock runs out, or the client is decided as one that waits for the server and reset. So
        // the connect and the send are one synchronous step (no continuation that a busy thread pool can
        // hold back for hundreds of milliseconds, as a full suite beside a CPU hog once did), and both
        // clocks leave seconds for it.
        await using var rig = await CaptureRig.StartAsync(Policies, transparent: true, Zone, new Dictionary<string, string>
        {
            ["CHRONOGUARD__Proxy__HeaderTimeoutMs"] = "2000",
            ["CHRONOGUARD__Transparent__FirstBytesMs"] = "30000",
        });
        var hello = await ClientHellos.CaptureAsync("allowed.test");

        using var socket = rig.Namespace.Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Connect(IPEndPoint.Parse("127.0.0.2:443"));
        socket.Send(hello.AsSpan(0, hello.Length / 2));
        var reply = await ReadToEndAsync(socket);

        Assert.Equal([21, 3, 3, 0, 2, 2, 49], reply); // fatal access_denied
        var records = await rig.StopAsync();
        var record = Assert.Single(Transparent(records));
        Assert.Equal(("BLOCK", 403, ProxyReasons.SniTimeout, 443, "127.0.0.2"), (record.Decision, record.Status, record.Reason, record.Port, record.DialedIp));
    }

    [NamespaceFact]
    public async Task A_connection_redirected_to_the_sidecars_own_ports_is_refused_as_a_loop()
    {
        await using var rig = await CaptureRig.StartAsync(Policies, transparent: true, Zone);
        // No exclusions at all: even 127.0.0.1 is redirected, so a connection to one of the sidecar's
        // own listeners reaches the transparent listener with that listener as its destination.
        await rig.Namespace.InstallRulesAsync("--sidecar-uid", "1654", "--transparent-port", "15001", "--dns-port", "15053", "--exclude-cidrs", "");
        IPEndPoint[] own = [IPEndPoint.Parse("127.0.0.1:15001"), IPEndPoint.Parse("127.0.0.1:15053"), rig.Sidecar.ProxyEndPoint, rig.Sidecar.StatsEndPoint];
        foreach (var destination in own)
        {
            using var socket = rig.Namespace.Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                await socket.ConnectAsync(destination);
                await socket.SendAsync("GET / HTTP/1.1\r\nHost: allowed.test\r\n\r\n"u8.ToArray());
                Assert.Empty(await ReadToEndAsync(socket));
            }
            catch (SocketException ex) when (ex.SocketErrorCode is SocketError.ConnectionReset or SocketError.Shutdown)
            {
                // The reset may beat the connect's completion or the request.
            }
        }

        var records = await rig.StopAsync();
        Assert.Equal(own.Select(e => (e.Port, "BLOCK", ProxyReasons.OwnListener)), Transparent(records).Select(r => (r.Port, r.Decision, r.Reason)));
    }

    [NamespaceFact]
    public Task The_egress_check_passes_every_attempt_with_the_iptables_rules_and_fails_without_them() => EgressCheckAsync("iptables");

    [NamespaceFact]
    public Task The_egress_check_passes_every_attempt_with_the_nft_rules_and_fails_without_them() => EgressCheckAsync("nft");

    private static async Task EgressCheckAsync(string backend)
    {
        await using var rig = await CaptureRig.StartAsync(Policies, transparent: true, Zone, null, null, "--backend", backend);
        await rig.Namespace.MustRunAsync("ip", "addr", "add", "fd00::9/128", "dev", "lo");
        string[] check = [Path.Combine(ExternalTools.RepoRoot, "deploy", "check-egress.py"), "--ipv4", "127.0.0.9", "--ipv6", "fd00::9", "--dns", "127.0.0.9"];

        var (code, output) = await rig.Namespace.RunAsync("/usr/bin/python3", check);
        Assert.True(code == 0, output);
        Assert.Contains("9 passed, 0 failed", output, StringComparison.Ordinal);
        Assert.Contains("PASS  tcp 127.0.0.9:80                   taken by the sidecar: 403 DENY default_deny", output, StringComparison.Ordinal);
        Assert.Empty(rig.Upstream.Questions); // every DNS question was the guard's to refuse

        // The same check without the rules: what it would let out, it reports.
        await rig.Namespace.MustRunAsync("sh", Path.Combine(ExternalTools.RepoRoot, "deploy", "init", "chronoguard-init.sh"), "--remove");
        (code, output) = await rig.Namespace.RunAsync("/usr/bin/python3", check);
        Assert.True(code == 1, output);
        Assert.Contains("FAIL  udp 127.0.0.9:443 (QUIC)", output, StringComparison.Ordinal);
        Assert.Contains("FAIL  tcp 127.0.0.9:80", output, StringComparison.Ordinal);

        var records = await rig.StopAsync();
        Assert.Equal([("GET", "127.0.0.9", "default_deny")], Transparent(records).Select(r => (r.Method, r.Host, r.Reason)));
        Assert.All(Dns(records), r => Assert.Equal(("TXT", ProxyReasons.DnsTypeRefused), (r.Path, r.Reason)));
        Assert.Equal(3, Dns(records).Count());
    }

    [NamespaceFact]
    public async Task With_Listen6_IPv6_TCP_is_taken_by_the_sidecar_instead_of_refused()
    {
        await using var rig = await CaptureRig.StartAsync(Policies, transparent: true, Zone,
            new Dictionary<string, string> { ["CHRONOGUARD__Transparent__Listen6"] = $"[::1]:{CaptureRig.TransparentPort}" }, null,
            "--transparent6-port", CaptureRig.TransparentPort.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await rig.Sidecar.WaitForOutputAsync(l => l.Contains($"Transparent:Listen6 listening on [::1]:{CaptureRig.TransparentPort}", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
        await rig.Namespace.MustRunAsync("ip", "addr", "add", "fd00::9/128", "dev", "lo");

        var (code, output) = await rig.Namespace.RunAsync("/usr/bin/python3", [Path.Combine(ExternalTools.RepoRoot, "deploy", "check-egress.py"), "--ipv4", "127.0.0.9", "--ipv6", "fd00::9", "--dns", "127.0.0.9", "--listen6"]);
        Assert.True(code == 0, output);
        var tcp6 = output.Split('\n').Single(l => l.Contains("tcp6 [fd00::9]:80", StringComparison.Ordinal));
        Assert.True(tcp6.StartsWith("PASS", StringComparison.Ordinal) && tcp6.EndsWith("taken by the sidecar: 403 DENY default_deny", StringComparison.Ordinal), output);
        Assert.Contains("PASS  udp6 [fd00::9]:443 (QUIC)", output, StringComparison.Ordinal);

        var records = await rig.StopAsync();
        Assert.Equal(
            [("127.0.0.9", "127.0.0.9"), ("fd00::9", "fd00::9")],
            Transparent(records).Select(r => (r.Host, r.DialedIp)));
    }

    [NamespaceFact]
    public async Task Each_Listeners_UID_is_redirected_to_its_own_listener_and_decided_as_its_agent()
    {
        await ExternalTools.EnsureAsync("curl");
        var agents = $$"""
            [ { "id": "bot", "tokenSha256": "{{Policy.PolicyFixture.TokenSha}}", "policies": ["p"] },
              { "id": "bot2", "tokenSha256": "{{Policy.PolicyFixture.TokenSha}}", "policies": ["q"] } ]
            """;
        const string policies = """[ { "name": "p", "allowedDomains": ["allowed.test"] }, { "name": "q", "allowedDomains": ["allowed.test", "evil.test"] } ]""";
        await using var rig = await CaptureRig.StartAsync(policies, transparent: true, Zone, new Dictionary<string, string>
        {
            ["CHRONOGUARD__Transparent__Listeners__0__Listen"] = "127.0.0.1:15002",
            ["CHRONOGUARD__Transparent__Listeners__0__Agent"] = "bot2",
            ["CHRONOGUARD__Transparent__Listeners__0__Uid"] = "2001",
        }, agents, "--listener", "2001=15002");
        await rig.Sidecar.WaitForOutputAsync(l => l.Contains("Transparent:Listeners:0:Listen listening on 127.0.0.1:15002", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
        var seen = new List<string>();
        await using var origin = HttpOrigin(rig.Namespace, "127.0.0.2", seen);
        string[] asUid2001 = ["setpriv", "--reuid=2001", "--regid=2001", "--clear-groups", "--"];

        var (code, body) = await rig.Namespace.RunAsync(asUid2001[0], [.. asUid2001[1..], "curl", "-sS", "--max-time", "20", "--resolve", "evil.test:80:127.0.0.2", "http://evil.test/"]);
        Assert.True(code == 0 && body == "hello from 127.0.0.2", $"as 2001: {code} {body}");
        (code, body) = await Curl(rig, "-i", "--resolve", "evil.test:80:127.0.0.2", "http://evil.test/");
        Assert.Contains("HTTP/1.1 403", body, StringComparison.Ordinal);

        var records = await rig.StopAsync();
        Assert.Equal(["GET / evil.test"], seen);
        Assert.Equal(
            [("bot2", "evil.test", "ALLOW"), ("bot", "evil.test", "DENY")],
            records.Where(r => r.Method != "DNS").Select(r => (r.Agent, r.Host, r.Decision)));
        Assert.All(records.Where(r => r.Method != "DNS"), r => Assert.Equal(AuditIdentity.Transparent, r.Identity));
    }

    private static List<AuditEntry> Transparent(List<AuditEntry> records)
    {
        var transparent = records.Where(r => r.Method != "DNS").ToList();
        Assert.All(transparent, r => Assert.Equal((AuditIdentity.Transparent, "bot"), (r.Identity, r.Agent)));
        return transparent;
    }

    private static IEnumerable<AuditEntry> Dns(List<AuditEntry> records) => records.Where(r => r.Method == "DNS");

    private static Task<(int Code, string Output)> Curl(CaptureRig rig, params string[] args) =>
        rig.Namespace.RunAsync("curl", ["-sS", "--noproxy", "*", "--max-time", "20", .. args], TimeSpan.FromSeconds(40));

    /// <summary>A plain-HTTP origin on <paramref name="address"/>:80 inside the namespace; notes "METHOD PATH HOST" of every request.</summary>
    private static TcpOrigin HttpOrigin(NetNamespace ns, string address, List<string> seen) =>
        new(ns.Listen(new IPEndPoint(IPAddress.Parse(address), 80)), async s =>
        {
            var head = new StringBuilder();
            var buffer = new byte[4096];
            while (!head.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
            {
                var n = await s.ReceiveAsync(buffer);
                if (n == 0)
                {
                    return;
                }

                head.Append(Encoding.ASCII.GetString(buffer, 0, n));
            }

            var lines = head.ToString().Split("\r\n");
            var host = lines.First(l => l.StartsWith("Host:", StringComparison.OrdinalIgnoreCase))[5..].Trim();
            lock (seen)
            {
                seen.Add($"{string.Join(' ', lines[0].Split(' ')[..2])} {host}");
            }

            var body = $"hello from {address}";
            await s.SendAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n{body}"));
            s.Shutdown(SocketShutdown.Send);
        });

    /// <summary>An sshd on port 22 of <paramref name="addresses"/> inside the namespace (own host key, one client key, root by key only); returns the client key.</summary>
    private static async Task<string> StartSshdAsync(NetNamespace ns, params string[] addresses)
    {
        var home = Directory.CreateDirectory(Path.Combine(ns.Dir.Path, "sshd")).FullName;
        Directory.CreateDirectory("/run/sshd"); // privilege separation directory sshd insists on
        foreach (var file in new[] { "host_key", "client_key" })
        {
            var (code, output) = await ExternalTools.RunAsync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", Path.Combine(home, file)], TimeSpan.FromSeconds(30));
            Assert.True(code == 0, output);
        }

        File.Copy(Path.Combine(home, "client_key.pub"), Path.Combine(home, "authorized_keys"));
        await File.WriteAllTextAsync(Path.Combine(home, "sshd_config"), $"""
            {string.Join('\n', addresses.Select(a => $"ListenAddress {a}:22"))}
            HostKey {Path.Combine(home, "host_key")}
            AuthorizedKeysFile {Path.Combine(home, "authorized_keys")}
            PidFile {Path.Combine(home, "sshd.pid")}
            PermitRootLogin prohibit-password
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            UsePAM no
            StrictModes no
            """);
        var listening = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var log = new System.Collections.Concurrent.ConcurrentQueue<string>();
        ns.Start("/usr/sbin/sshd", ["-D", "-e", "-f", Path.Combine(home, "sshd_config")], line =>
        {
            log.Enqueue(line);
            if (line.Contains("Server listening on", StringComparison.Ordinal))
            {
                listening.TrySetResult();
            }
        });
        try
        {
            await listening.Task.WaitAsync(TimeSpan.FromSeconds(30));
        }
        catch (TimeoutException)
        {
            throw new TimeoutException("sshd never listened: " + string.Join('\n', log));
        }

        return Path.Combine(home, "client_key");
    }

    private static async Task<byte[]> ReadToEndAsync(Socket socket)
    {
        using var received = new MemoryStream();
        var buffer = new byte[4096];
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            int n;
            while ((n = await socket.ReceiveAsync(buffer, deadline.Token)) > 0)
            {
                received.Write(buffer, 0, n);
            }
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.ConnectionReset)
        {
        }

        return received.ToArray();
    }
}
