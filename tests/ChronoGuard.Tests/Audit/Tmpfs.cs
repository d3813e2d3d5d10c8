using System.Diagnostics;

namespace ChronoGuard.Tests.Audit;

/// <summary>A small tmpfs mounted for one test (a disk that fills up); unmounted and removed on dispose.</summary>
internal sealed class Tmpfs : IDisposable
{
    public Tmpfs(string sizeSpec)
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "cg-tmpfs-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
        Run("mount", "-t", "tmpfs", "-o", "size=" + sizeSpec, "tmpfs", Path);
    }

    public string Path { get; }

    public static void Run(string file, params string[] args)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        using var p = Process.Start(info)!;
        var err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', args)}: exit {p.ExitCode}: {err}");
        }
    }

    /// <summary>Fills the filesystem to the last byte with one file; delete it to free the space.</summary>
    public string Fill()
    {
        var filler = System.IO.Path.Combine(Path, "filler");
        using var f = new FileStream(filler, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 0);
        var chunk = new byte[4096];
        try
        {
            while (true)
            {
                f.Write(chunk);
            }
        }
        catch (IOException)
        {
            // ENOSPC: full.
        }

        return filler;
    }

    public void Dispose()
    {
        try
        {
            Run("umount", "-l", Path);
            Directory.Delete(Path, recursive: true);
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException)
        {
        }
    }
}
