using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using ChronoGuard.Audit;
using ChronoGuard.Tests.Policy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Socks;

/// <summary>
/// SOCKS5 through the real binary with the clients people use: curl (<c>--socks5-hostname</c> and
/// <c>--socks5</c>, with and without a login), OpenBSD <c>nc -X 5</c> on an agent-bound listener, and
/// <c>ssh</c> with <c>ProxyCommand nc -X 5</c> to a loopback <c>sshd</c>: git over SSH through the
/// sidecar. The chain then says what happened: method SOCKS, and how each agent was identified.
/// </summary>
[Collection(RunAlone.Name)]
public sealed partial class SocksRealClientTests
{
    [Fact]
    public async Task Curl_nc_and_ssh_go_through_SOCKS5_and_every_tunnel_is_in_the_chain()
    {
        await ExternalTools.EnsureAsync("curl", "nc", "ssh", "sshd", "ssh-keygen");
        using var dir = new TempDir();
        await using var origin = await KestrelOrigin.StartAsync();
        await using var echo = TcpOrigin.Echo();
        await using var sshd = await Sshd.StartAsync(dir);
        File.WriteAllText(dir.File("policy.json"), $$"""
            {
              "version": 1,
              "network": { "allowPrivateDestinations": false, "allowedCidrs": ["127.0.0.0/8"], "allowedPorts": [{{origin.Port}}, {{echo.Port}}, {{sshd.Port}}], "requireSniMatch": true },
              "agents": [ { "id": "bot", "tokenSha256": "{{PolicyFixture.TokenSha}}", "policies": ["p"] },
                          { "id": "git-bot", "tokenSha256": "{{PolicyFixture.TokenSha}}", "policies": ["p"] } ],
              "policies": [ { "name": "p", "allowedDomains": ["localhost", "127.0.0.1"] } ]
            }
            """);
        var sidecar = await SidecarProcess.StartAsync(dir.Path, ["--policy", dir.File("policy.json")], new Dictionary<string, string>
        {
            ["CHRONOGUARD__Socks__Listen"] = "127.0.0.1:0",
            ["CHRONOGUARD__Socks__Listeners__0__Listen"] = "127.0.0.1:0",
            ["CHRONOGUARD__Socks__Listeners__0__Agent"] = "git-bot",
        });
        List<AuditEntry> records;
        try
        {
            var socks = await ListenerOf(sidecar, "Socks:Listen");
            var bound = await ListenerOf(sidecar, "Socks:Listeners:0:Listen");
            var login = $"bot:{PolicyFixture.Token}";

            var (code, output) = await Curl("--socks5-hostname", socks, "-U", login, $"http://localhost:{origin.Port}/hello");
            Assert.True(code == 0 && output == "hello from origin", $"curl --socks5-hostname: {code} {output}");
            (code, output) = await Curl("--socks5", socks, "-U", login, $"http://127.0.0.1:{origin.Port}/hello");
            Assert.True(code == 0 && output == "hello from origin", $"curl --socks5: {code} {output}");
            (code, output) = await Curl("--socks5-hostname", socks, $"http://localhost:{origin.Port}/hello");
            Assert.True(code != 0, $"curl without a login got through: {output}");
            (code, output) = await Curl("--socks5-hostname", socks, "-U", "bot:wrong", $"http://localhost:{origin.Port}/hello");
            Assert.True(code != 0, $"curl with a wrong token got through: {output}");

            (code, output) = await ExternalTools.RunAsync("nc", ["-N", "-w", "10", "-X", "5", "-x", bound, "localhost", echo.Port.ToString(System.Globalization.CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(30), stdin: "ping through nc\n");
            Assert.True(code == 0 && output == "ping through nc\n", $"nc -X 5: {code} {output}");

            (code, output) = await ExternalTools.RunAsync("ssh", [
                "-i", sshd.ClientKey, "-p", sshd.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
                "-o", $"ProxyCommand=nc -X 5 -x {bound} %h %p",
                "root@localhost", "echo", "through-socks"], TimeSpan.FromSeconds(60));
            Assert.True(code == 0 && output.Trim() == "through-socks", $"ssh over nc -X 5: {code} {output}");
        }
        finally
        {
            sidecar.Signal("TERM");
            Assert.Equal(0, await sidecar.WaitForExitAsync(TimeSpan.FromSeconds(30)));
            await sidecar.DisposeAsync();
        }

        records = AuditReader.ReadDirectory(dir.File("audit")).Select(i => i.Entry!).Where(e => e.Kind == AuditKind.Decision).ToList();
        var socksRecords = records.Where(e => e.Method == "SOCKS").Select(e => (e.Decision, e.Status, e.Reason, e.Agent, Identity: AuditEntry.IdentityName(e.Identity))).ToList();
        Assert.Equal(
            [
                ("ALLOW", 200, "allowed", "bot", "credential"),
                ("ALLOW", 200, "allowed", "bot", "credential"),
                ("ALLOW", 200, "allowed", "git-bot", "listener"),
                ("ALLOW", 200, "allowed", "git-bot", "listener"),
            ],
            socksRecords);
        // The two refused logins: no method offered (407 auth_required), a failed login (407 bad_credentials).
        Assert.Equal(["auth_required", "bad_credentials"], records.Where(e => e.Status == 407).Select(e => e.Reason));
    }

    private static Task<(int Code, string Output)> Curl(params string[] args) =>
        ExternalTools.RunAsync("curl", ["-sS", "--max-time", "20", .. args], TimeSpan.FromSeconds(40));

    private static async Task<string> ListenerOf(SidecarProcess sidecar, string setting)
    {
        var line = await sidecar.WaitForOutputAsync(l => l.Contains(setting + " listening on ", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
        return ListeningOn().Match(line[line.IndexOf(setting + " listening on ", StringComparison.Ordinal)..]).Groups[1].Value;
    }

    [GeneratedRegex(@"listening on (\S+) \(")]
    private static partial Regex ListeningOn();

    /// <summary>A throwaway sshd on 127.0.0.1 with its own host key and one authorized client key (root login, key only).</summary>
    private sealed class Sshd : IAsyncDisposable
    {
        private readonly Process _process;

        private Sshd(Process process, int port, string clientKey)
        {
            _process = process;
            Port = port;
            ClientKey = clientKey;
        }

        public int Port { get; }

        public string ClientKey { get; }

        public static async Task<Sshd> StartAsync(TempDir dir)
        {
            var home = dir.File("sshd");
            Directory.CreateDirectory(home);
            Directory.CreateDirectory("/run/sshd"); // privilege separation directory sshd insists on
            foreach (var (key, file) in new[] { ("host", "host_key"), ("client", "client_key") })
            {
                var (code, output) = await ExternalTools.RunAsync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", key, "-f", Path.Combine(home, file)], TimeSpan.FromSeconds(30));
                Assert.True(code == 0, output);
            }

            File.Copy(Path.Combine(home, "client_key.pub"), Path.Combine(home, "authorized_keys"));
            using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            var port = ((IPEndPoint)probe.LocalEndPoint!).Port;
            probe.Dispose();
            File.WriteAllText(Path.Combine(home, "sshd_config"), $"""
                ListenAddress 127.0.0.1:{port}
                HostKey {Path.Combine(home, "host_key")}
                AuthorizedKeysFile {Path.Combine(home, "authorized_keys")}
                PidFile {Path.Combine(home, "sshd.pid")}
                PermitRootLogin prohibit-password
                PasswordAuthentication no
                KbdInteractiveAuthentication no
                UsePAM no
                StrictModes no
                """);
            var info = new ProcessStartInfo("/usr/sbin/sshd") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
            foreach (var a in new[] { "-D", "-e", "-f", Path.Combine(home, "sshd_config") })
            {
                info.ArgumentList.Add(a);
            }

            var listening = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var log = new System.Collections.Concurrent.ConcurrentQueue<string>();
            var process = new Process { StartInfo = info };
            process.ErrorDataReceived += (_, e) =>
            {
                if (e.Data is { } line)
                {
                    log.Enqueue(line);
                    if (line.Contains("Server listening on", StringComparison.Ordinal))
                    {
                        listening.TrySetResult();
                    }
                }
            };
            process.Start();
            TestChildren.Track(process);
            process.BeginErrorReadLine();
            try
            {
                await listening.Task.WaitAsync(TimeSpan.FromSeconds(30));
            }
            catch (TimeoutException)
            {
                process.Kill();
                throw new TimeoutException("sshd never listened: " + string.Join('\n', log));
            }

            return new Sshd(process, port, Path.Combine(home, "client_key"));
        }

        public async ValueTask DisposeAsync()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }

            _process.Dispose();
        }
    }
}
