using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;

namespace ChronoGuard.Tests.Support;

/// <summary>
/// Keeps a register of the processes the suite starts to outlive a call (sidecars, sshd, resolvers,
/// programs in a test namespace), and ends those a host that is gone left behind. A child is not tied
/// to its host's life: Linux's parent-death signal follows the thread that forked, and .NET forks from
/// whichever pool thread starts the process, so that signal would kill children early. A host that
/// crashes mid-test therefore leaves its children running; the next run reaps them as it starts its
/// first. The register names each process by PID and start time, so a PID used again is never taken
/// for the one registered (the children's own environment cannot carry the mark: sshd overwrites it
/// with its process title), and children of a host still running (another suite beside this one)
/// are left alone.
/// </summary>
internal static class TestChildren
{
    private static readonly string Register = Path.Combine(Path.GetTempPath(), "chronoguard-test-children");
    private static int _reaped;

    /// <summary>Registers a started child as this host's; the first call reaps orphans first.</summary>
    public static void Track(Process child)
    {
        if (Interlocked.Exchange(ref _reaped, 1) == 0)
        {
            ReapOrphans();
        }

        if (Identity(Environment.ProcessId) is { } host)
        {
            Track(child, host);
        }
    }

    /// <summary>Registers <paramref name="child"/> under a host named by <see cref="Identity"/>.</summary>
    internal static void Track(Process child, string host)
    {
        if (Identity(child.Id) is { } identity)
        {
            Directory.CreateDirectory(Register);
            File.WriteAllBytes(Path.Combine(Register, host + "." + identity), []);
        }
    }

    /// <summary>Kills every registered process whose host no longer runs; the PIDs it killed.</summary>
    internal static List<int> ReapOrphans()
    {
        var killed = new List<int>();
        if (!Directory.Exists(Register))
        {
            return killed;
        }

        foreach (var entry in Directory.EnumerateFiles(Register))
        {
            var name = Path.GetFileName(entry).Split('.');
            if (name.Length != 2 || Pid(name[0]) is not { } host || Pid(name[1]) is not { } child)
            {
                continue;
            }

            if (Identity(host) == name[0])
            {
                continue;
            }

            if (Identity(child) == name[1])
            {
                try
                {
                    using var orphan = Process.GetProcessById(child);
                    orphan.Kill();
                    killed.Add(child);
                }
                catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or Win32Exception)
                {
                    // Exited meanwhile.
                }
            }

            try
            {
                File.Delete(entry);
            }
            catch (IOException)
            {
            }
        }

        return killed;
    }

    /// <summary>"PID-STARTTIME" of a running process (its start in clock ticks since boot), or null when there is none.</summary>
    internal static string? Identity(int pid)
    {
        string stat;
        try
        {
            stat = File.ReadAllText("/proc/" + pid.ToString(CultureInfo.InvariantCulture) + "/stat");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        // proc(5): the fields after the command name in parentheses; starttime is field 22 (index 19 here).
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return fields.Length > 19 ? pid.ToString(CultureInfo.InvariantCulture) + "-" + fields[19] : null;
    }

    private static int? Pid(string identity)
    {
        var dash = identity.IndexOf('-', StringComparison.Ordinal);
        return dash > 0 && int.TryParse(identity.AsSpan(0, dash), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) ? pid : null;
    }
}
