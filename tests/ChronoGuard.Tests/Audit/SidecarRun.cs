using System.Diagnostics;

namespace ChronoGuard.Tests.Audit;

/// <summary>Runs <c>chronoguard run</c> that is expected to refuse at start: its exit code and stderr.</summary>
internal static class SidecarRun
{
    public static async Task<(int Code, string Stderr)> RunToExitAsync(string workDir, IDictionary<string, string>? environment = null)
    {
        var testBin = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var configuration = testBin.Parent!.Name;
        var repo = testBin.Parent.Parent!.Parent!.Parent!.Parent!.FullName;
        var info = new ProcessStartInfo("dotnet") { WorkingDirectory = workDir, RedirectStandardError = true, RedirectStandardOutput = true };
        info.ArgumentList.Add(Path.Combine(repo, "src", "ChronoGuard.Sidecar", "bin", configuration, testBin.Name, "chronoguard.dll"));
        foreach (var a in new[] { "run", "--listen", "127.0.0.1:0", "--stats", "127.0.0.1:0", "--audit-dir", Path.Combine(workDir, "audit") })
        {
            info.ArgumentList.Add(a);
        }

        // As Support.SidecarRun: no diagnostics IPC files left behind by a killed child.
        info.Environment["DOTNET_EnableDiagnostics"] = "0";
        foreach (var (k, v) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[k] = v;
        }

        using var p = Process.Start(info)!;
        ChronoGuard.Tests.Support.TestChildren.Track(p);
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException("chronoguard run did not exit: " + await stdout);
        }

        await stdout;
        return (p.ExitCode, await stderr);
    }
}
