using System.Diagnostics;

namespace ChronoGuard.Tests.Support;

/// <summary>
/// Real clients and servers from the system (curl, OpenBSD nc, ssh, sshd), installed on first use by
/// the repo's own script (tests/tools/ensure-packages), so the README's one test command is enough on
/// a fresh machine; and a way to run them with a deadline and their output.
/// </summary>
internal static class ExternalTools
{
    private static readonly SemaphoreSlim Once = new(1, 1);
    private static readonly HashSet<string> Ensured = [];

    public static async Task EnsureAsync(params string[] commands)
    {
        await Once.WaitAsync();
        try
        {
            var missing = commands.Where(c => !Ensured.Contains(c)).ToArray();
            if (missing.Length == 0)
            {
                return;
            }

            var script = Path.Combine(RepoRoot, "tests", "tools", "ensure-packages");
            var (code, output) = await RunAsync("bash", [script, .. missing], TimeSpan.FromMinutes(5));
            Assert.True(code == 0, $"tests/tools/ensure-packages {string.Join(' ', missing)} failed ({code}): {output}");
            Ensured.UnionWith(missing);
        }
        finally
        {
            Once.Release();
        }
    }

    /// <summary>Runs a program to its end (killed past <paramref name="timeout"/>); stdout and stderr together.</summary>
    public static async Task<(int Code, string Output)> RunAsync(string program, IEnumerable<string> args, TimeSpan timeout, string? stdin = null)
    {
        var info = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            await process.StandardInput.WriteAsync(stdin);
        }

        process.StandardInput.Close();
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            return (-1, $"timed out after {timeout}: {await stdout}{await stderr}");
        }

        return (process.ExitCode, await stdout + await stderr);
    }

    public static string RepoRoot => Path.GetFullPath(Path.Combine(Path.GetDirectoryName(SidecarProcess.SidecarAssembly)!, "..", "..", "..", "..", ".."));
}
