using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace ChronoGuard.Tests.Support;

/// <summary>
/// A private network and mount namespace the test creates and removes: a keeper process made by
/// <c>unshare --net --mount</c> holds it, every command enters it with <c>nsenter</c>, and sockets the
/// test itself needs inside it are made by a thread that joins it for the one <c>socket()</c> call
/// (a socket keeps the namespace it was made in). Only <c>lo</c> is up, so nothing in it can reach
/// this machine's network, and <c>/etc/resolv.conf</c> is bind-mounted in its mount namespace only,
/// so the machine's resolver is never a target. Dispose kills every process started in it, then
/// the keeper; with the last process gone the kernel frees the namespaces.
/// </summary>
internal sealed partial class NetNamespace : IAsyncDisposable
{
    private const int CloneNewNet = 0x40000000;
    private readonly Process _keeper;
    private readonly List<Process> _started = [];

    private NetNamespace(Process keeper, TempDir dir)
    {
        _keeper = keeper;
        Dir = dir;
    }

    /// <summary>Why namespace tests cannot run here (not root, no unshare), or null when they can.</summary>
    public static string? Unavailable { get; } = FindUnavailable();

    /// <summary>A directory for the namespace's files (its resolv.conf, keys, scripts); removed on dispose.</summary>
    public TempDir Dir { get; }

    public int KeeperPid => _keeper.Id;

    private static readonly string[] WithoutProxy =
        ["env", .. new[] { "http_proxy", "https_proxy", "all_proxy", "no_proxy", "NODE_USE_ENV_PROXY" }.SelectMany(v => new[] { "-u", v, "-u", v.ToUpperInvariant() })];

    /// <summary>The command prefix that runs a program inside the namespace.</summary>
    public IReadOnlyList<string> Enter => ["nsenter", $"--target={_keeper.Id}", "--net", "--mount", "--"];

    public static async Task<NetNamespace> CreateAsync()
    {
        Assert.True(Unavailable is null, Unavailable);
        var info = new ProcessStartInfo("unshare") { RedirectStandardInput = true, UseShellExecute = false };
        // The keeper ends when its stdin does: the test process gone, however it ended, takes it along.
        foreach (var a in new[] { "--net", "--mount", "--propagation", "private", "--", "sh", "-c", "read _ignored" })
        {
            info.ArgumentList.Add(a);
        }

        var keeper = Process.Start(info)!;
        var ns = new NetNamespace(keeper, new TempDir());
        try
        {
            // unshare execs sh once the namespaces exist; until then /proc/PID/ns/net is this machine's.
            var own = File.ResolveLinkTarget("/proc/self/ns/net", false)!.Name;
            for (var i = 0; i < 500 && File.ResolveLinkTarget($"/proc/{keeper.Id}/ns/net", false)?.Name == own; i++)
            {
                await Task.Delay(10);
            }

            Assert.NotEqual(own, File.ResolveLinkTarget($"/proc/{keeper.Id}/ns/net", false)!.Name);
            await ns.MustRunAsync("ip", "link", "set", "lo", "up");
            // Readable by the sidecar's user (the TempDir is root's and 0755 by umask; make sure).
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(ns.Dir.Path, (UnixFileMode)0b111_101_101);
            }
            return ns;
        }
        catch
        {
            await ns.DisposeAsync();
            throw;
        }
    }

    /// <summary>Points <c>/etc/resolv.conf</c>, inside the namespace only, at <paramref name="nameserver"/> (port 53 by definition).</summary>
    public async Task UseResolverAsync(string nameserver)
    {
        var file = Dir.File("resolv.conf");
        await File.WriteAllTextAsync(file, $"nameserver {nameserver}\noptions timeout:2 attempts:1\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(file, (UnixFileMode)0b110_100_100);
        }

        await MustRunAsync("mount", "--bind", file, "/etc/resolv.conf");
    }

    /// <summary>Installs the pod's rules with the repository's own init script, run inside the namespace.</summary>
    public async Task<string> InstallRulesAsync(params string[] args)
    {
        await ExternalTools.EnsureAsync("iptables", "nft");
        return await MustRunAsync("sh", [Path.Combine(ExternalTools.RepoRoot, "deploy", "init", "chronoguard-init.sh"), .. args]);
    }

    /// <summary>Runs a program inside the namespace to its end, with no proxy variables: what it reaches, it reaches by itself.</summary>
    public Task<(int Code, string Output)> RunAsync(string program, IEnumerable<string> args, TimeSpan? timeout = null, string? stdin = null) =>
        ExternalTools.RunAsync("nsenter", [.. Enter.Skip(1), .. WithoutProxy, program, .. args], timeout ?? TimeSpan.FromSeconds(30), stdin);

    /// <summary>A listening TCP socket inside the namespace (an origin on 127.0.0.2…).</summary>
    public Socket Listen(IPEndPoint endPoint)
    {
        var socket = Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(endPoint);
        socket.Listen(64);
        return socket;
    }

    public async Task<string> MustRunAsync(string program, params string[] args)
    {
        var (code, output) = await RunAsync(program, args);
        Assert.True(code == 0, $"{program} {string.Join(' ', args)} in the namespace failed ({code}): {output}");
        return output;
    }

    /// <summary>
    /// Starts a long-running program inside the namespace (an origin, sshd), killed on dispose; its
    /// output lines go to <paramref name="onLine"/>.
    /// </summary>
    public Process Start(string program, IEnumerable<string> args, Action<string>? onLine = null, IDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo(Enter[0]) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (var a in Enter.Skip(1).Concat(WithoutProxy).Append(program).Concat(args))
        {
            info.ArgumentList.Add(a);
        }

        foreach (var (k, v) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[k] = v;
        }

        var process = new Process { StartInfo = info };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { onLine?.Invoke(e.Data); } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { onLine?.Invoke(e.Data); } };
        process.Start();
        TestChildren.Track(process);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        lock (_started)
        {
            _started.Add(process);
        }

        return process;
    }

    /// <summary>A socket made inside the namespace: connects and binds there, whatever thread uses it later.</summary>
    public Socket Socket(AddressFamily family, SocketType type, ProtocolType protocol)
    {
        Socket? made = null;
        Exception? failed = null;
        var thread = new Thread(() =>
        {
            try
            {
                using var home = File.OpenHandle("/proc/thread-self/ns/net");
                using var target = File.OpenHandle($"/proc/{_keeper.Id}/ns/net");
                Check(SetNs(target.DangerousGetHandle().ToInt32(), CloneNewNet), "setns into the test namespace");
                try
                {
                    made = new Socket(family, type, protocol);
                }
                finally
                {
                    Check(SetNs(home.DangerousGetHandle().ToInt32(), CloneNewNet), "setns back");
                }
            }
            catch (Exception ex)
            {
                failed = ex;
            }
        });
        thread.Start();
        thread.Join();
        return made ?? throw new InvalidOperationException("could not make a socket in the test namespace", failed);

        static void Check(int result, string what)
        {
            if (result != 0)
            {
                throw new InvalidOperationException($"{what} failed: errno {Marshal.GetLastPInvokeError()}");
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        List<Process> started;
        lock (_started)
        {
            started = [.. _started];
        }

        foreach (var p in started.Append(_keeper))
        {
            try
            {
                if (!p.HasExited)
                {
                    p.Kill(entireProcessTree: true);
                    await p.WaitForExitAsync();
                }
            }
            catch (InvalidOperationException)
            {
            }

            p.Dispose();
        }

        Dir.Dispose();
    }

    private static string? FindUnavailable()
    {
        if (!OperatingSystem.IsLinux())
        {
            return "namespace tests need Linux";
        }

        if (Environment.UserName != "root")
        {
            return "namespace tests need root (unshare --net, iptables, a second UID for the sidecar): run the tests as root";
        }

        foreach (var tool in new[] { "unshare", "nsenter", "setpriv" })
        {
            if (!new[] { "/usr/bin", "/bin", "/usr/sbin", "/sbin" }.Any(d => File.Exists(Path.Combine(d, tool))))
            {
                return $"namespace tests need {tool} (util-linux), which is not installed";
            }
        }

        using var probe = Process.Start(new ProcessStartInfo("unshare", ["--net", "--mount", "--", "true"]) { RedirectStandardError = true, UseShellExecute = false })!;
        var error = probe.StandardError.ReadToEnd();
        probe.WaitForExit();
        return probe.ExitCode == 0 ? null : $"this machine cannot create network namespaces (unshare --net --mount: {error.Trim()})";
    }

    [LibraryImport("libc", EntryPoint = "setns", SetLastError = true)]
    private static partial int SetNs(int fd, int nstype);
}
