using System.Diagnostics;

namespace ChronoGuard.Tests.Support;

/// <summary>The real <c>chronoguard</c> executable run to its exit, for start-up failures.</summary>
internal static class SidecarRun
{
    internal sealed record Result(int ExitCode, string Stdout, string Stderr);

    /// <summary>Runs <c>chronoguard ARGS</c>; a process still running after <paramref name="timeout"/> is killed and fails the test.</summary>
    public static async Task<Result> RunAsync(string workDir, IEnumerable<string> args, IDictionary<string, string>? environment = null, TimeSpan? timeout = null)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workDir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(SidecarProcess.SidecarAssembly);
        foreach (var a in args)
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

        using var process = Process.Start(info)!;
        TestChildren.Track(process);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            Assert.Fail($"chronoguard {string.Join(' ', args)} was still running after {timeout ?? TimeSpan.FromSeconds(30)}; output:\n{await stdout}\n{await stderr}");
        }

        return new Result(process.ExitCode, await stdout, await stderr);
    }
}
