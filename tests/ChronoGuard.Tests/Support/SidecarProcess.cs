using System.Diagnostics;
using System.Net;
using System.Text.RegularExpressions;

namespace ChronoGuard.Tests.Support;

/// <summary>The real <c>chronoguard</c> executable as a child process, for signals, drain and crashes.</summary>
internal sealed partial class SidecarProcess : IAsyncDisposable
{
    private readonly List<string> _lines = [];
    private readonly List<(Func<string, bool> Match, TaskCompletionSource<string> Done)> _waiters = [];

    private SidecarProcess(Process process)
    {
        Process = process;
    }

    public Process Process { get; }

    public IPEndPoint ProxyEndPoint { get; private set; } = null!;

    public IPEndPoint StatsEndPoint { get; private set; } = null!;

    public string Output
    {
        get
        {
            lock (_lines)
            {
                return string.Join('\n', _lines);
            }
        }
    }

    /// <summary>Starts <c>chronoguard run</c> on ephemeral ports and waits until it says where it listens.</summary>
    /// <param name="launcher">A command that runs the sidecar (e.g. <c>prlimit --nofile=256:256</c>), or null.</param>
    /// <param name="assembly">The sidecar to run (default <see cref="SidecarAssembly"/>; another user needs <see cref="AssemblyForOtherUsers"/>).</param>
    public static async Task<SidecarProcess> StartAsync(string workDir, IEnumerable<string>? extraArgs = null, IDictionary<string, string>? environment = null, IReadOnlyList<string>? launcher = null, string? assembly = null)
    {
        var info = new ProcessStartInfo(launcher is { Count: > 0 } ? launcher[0] : "dotnet")
        {
            WorkingDirectory = workDir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (launcher is { Count: > 0 })
        {
            foreach (var a in launcher.Skip(1).Append("dotnet"))
            {
                info.ArgumentList.Add(a);
            }
        }

        info.ArgumentList.Add(assembly ?? SidecarAssembly);
        foreach (var a in new[] { "run", "--listen", "127.0.0.1:0", "--stats", "127.0.0.1:0", "--audit-dir", Path.Combine(workDir, "audit") }.Concat(extraArgs ?? []))
        {
            info.ArgumentList.Add(a);
        }

        // No diagnostics IPC (the runtime's /tmp/clr-debug-pipe-* and dotnet-diagnostic-* files): a
        // child the test kills with SIGKILL would leave them behind, thousands over a suite's runs.
        info.Environment["DOTNET_EnableDiagnostics"] = "0";
        foreach (var (k, v) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[k] = v;
        }

        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var sidecar = new SidecarProcess(process);
        process.Exited += (_, _) => sidecar.OnExited();
        process.OutputDataReceived += (_, e) => sidecar.OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => sidecar.OnLine(e.Data);
        process.Start();
        TestChildren.Track(process);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var started = await sidecar.WaitForOutputAsync(l => l.Contains("proxy listening on", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
        var m = ListeningPattern().Match(started);
        sidecar.ProxyEndPoint = IPEndPoint.Parse(m.Groups[1].Value);
        sidecar.StatsEndPoint = IPEndPoint.Parse(m.Groups[2].Value);
        return sidecar;
    }

    /// <summary>
    /// The sidecar from its own build output: the copy beside the tests lacks its dependencies, because
    /// the test project's ASP.NET Core framework reference supplies them to the tests only.
    /// </summary>
    internal static string SidecarAssembly
    {
        get
        {
            var testBin = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
            var configuration = testBin.Parent!.Name;
            var repo = testBin.Parent.Parent!.Parent!.Parent!.Parent!.FullName;
            return Path.Combine(repo, "src", "ChronoGuard.Sidecar", "bin", configuration, testBin.Name, "chronoguard.dll");
        }
    }

    private static readonly Lazy<string> Shared = new(() => OperatingSystem.IsWindows() ? SidecarAssembly : CopyForOtherUsers());

    /// <summary>
    /// The sidecar for a child running as another user (the namespace tests' sidecar UID): a copy of its
    /// build output in a world-readable folder under /tmp, made once per test run and removed at exit.
    /// The clone itself may sit below a folder only root can enter (mktemp's 0700, /root), which the
    /// other user could not read the assembly through.
    /// </summary>
    internal static string AssemblyForOtherUsers => Shared.Value;

    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private static string CopyForOtherUsers()
    {
        var from = Path.GetDirectoryName(SidecarAssembly)!;
        var to = Path.Combine("/tmp", $"chronoguard-sidecar-{Environment.ProcessId}");
        if (Directory.Exists(to))
        {
            Directory.Delete(to, recursive: true);
        }

        const UnixFileMode Open = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;
        Directory.CreateDirectory(to, Open);
        foreach (var dir in Directory.EnumerateDirectories(from, "*", SearchOption.AllDirectories))
        {
            Directory.CreateDirectory(Path.Combine(to, Path.GetRelativePath(from, dir)), Open);
        }

        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var copy = Path.Combine(to, Path.GetRelativePath(from, file));
            File.Copy(file, copy);
            File.SetUnixFileMode(copy, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        }

        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try
            {
                Directory.Delete(to, recursive: true);
            }
            catch (IOException)
            {
            }
        };
        return Path.Combine(to, Path.GetFileName(SidecarAssembly));
    }

    public Task<string> WaitForOutputAsync(Func<string, bool> match, TimeSpan timeout)
    {
        var tcs = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lines)
        {
            var existing = _lines.FirstOrDefault(match);
            if (existing is not null)
            {
                return Task.FromResult(existing);
            }

            _waiters.Add((match, tcs));
        }

        return WaitAsync();

        async Task<string> WaitAsync()
        {
            try
            {
                return await tcs.Task.WaitAsync(timeout);
            }
            catch (TimeoutException)
            {
                throw new TimeoutException("sidecar output never matched; output so far:\n" + Output);
            }
        }
    }

    public void Signal(string signal)
    {
        using var kill = Process.Start("kill", $"-{signal} {Process.Id}");
        kill.WaitForExit();
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        await Process.WaitForExitAsync(cts.Token);
        return Process.ExitCode;
    }

    private void OnExited()
    {
        // Give redirected output a moment to arrive before failing the waiters with it.
        Process.WaitForExit();
        lock (_lines)
        {
            foreach (var (_, done) in _waiters)
            {
                done.TrySetException(new InvalidOperationException($"sidecar exited with {Process.ExitCode}; output:\n" + string.Join('\n', _lines)));
            }

            _waiters.Clear();
        }
    }

    private void OnLine(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_lines)
        {
            _lines.Add(line);
            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                if (_waiters[i].Match(line))
                {
                    _waiters[i].Done.TrySetResult(line);
                    _waiters.RemoveAt(i);
                }
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!Process.HasExited)
        {
            Process.Kill(entireProcessTree: true);
            await Process.WaitForExitAsync();
        }

        Process.Dispose();
    }

    [GeneratedRegex(@"proxy listening on (\S+), stats on ([^\s,""]+)")]
    private static partial Regex ListeningPattern();
}
