using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;

namespace ChronoGuard.Proxy;

/// <summary>
/// The process's file descriptors as a budget: the soft RLIMIT_NOFILE is raised to the hard limit at
/// start (a soft 1024 beside a hard 20,000 is common and would hold a proxy to ~500 connections), the
/// admission limit is derived from it, one spare descriptor is held so that a client can still be
/// answered 503 when the rest run out, and running out is logged once per episode, not per failure.
/// </summary>
internal sealed partial class FileDescriptors : IDisposable
{
    /// <summary>A kept connection holds its client socket and, forwarding or tunnelling, one upstream socket.</summary>
    public const int PerConnection = 2;

    /// <summary>
    /// Beyond what is open at start: the audit log's segments and commit files, the stats endpoint and its
    /// clients, DNS lookups, policy reloads, signed checkpoints, and the refusals themselves.
    /// </summary>
    public const int Reserve = 64;

    /// <summary>An episode of exhaustion ends after this long without a failure; the next failure logs again.</summary>
    private const long EpisodeGapMs = 10_000;

    private const int RlimitNofile = 7;

    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private SafeFileHandle? _spare;
    private long _lastFailureMs = long.MinValue;

    public FileDescriptors(ILogger logger, TimeProvider time)
    {
        _logger = logger;
        _time = time;
        _spare = OpenSpare();
    }

    /// <summary>
    /// Raises the soft RLIMIT_NOFILE to the hard limit; returns the soft limit now in force, or -1 when
    /// it cannot be read (not Linux).
    /// </summary>
    public static long RaiseSoftLimit()
    {
        if (!OperatingSystem.IsLinux() || GetRLimit(RlimitNofile, out var limit) != 0)
        {
            return -1;
        }

        if (limit.Current < limit.Max)
        {
            var raised = new RLimit { Current = limit.Max, Max = limit.Max };
            if (SetRLimit(RlimitNofile, raised) == 0)
            {
                limit.Current = limit.Max;
            }
        }

        return limit.Current > long.MaxValue ? long.MaxValue : (long)limit.Current;
    }

    /// <summary>Descriptors open in this process now (-1 when it cannot tell).</summary>
    public static int OpenNow()
    {
        try
        {
            var n = 0;
            foreach (var _ in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
            {
                n++;
            }

            return n;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return -1;
        }
    }

    /// <summary>How many connections <paramref name="limit"/> leaves room for, with <paramref name="open"/> descriptors already in use.</summary>
    public static int ConnectionsAllowed(long limit, int open) =>
        limit < 0 || open < 0 ? int.MaxValue : (int)Math.Clamp((limit - open - Reserve) / PerConnection, 1, int.MaxValue);

    /// <summary>
    /// Lends the spare descriptor for one accept when the others have run out: closes it so the next
    /// accept succeeds; <see cref="ReturnSpare"/> takes it back once that client has been answered.
    /// </summary>
    public bool ReleaseSpare()
    {
        var spare = Interlocked.Exchange(ref _spare, null);
        spare?.Dispose();
        return spare is not null;
    }

    public void ReturnSpare()
    {
        if (Volatile.Read(ref _spare) is null && OpenSpare() is { } spare && Interlocked.CompareExchange(ref _spare, spare, null) is not null)
        {
            spare.Dispose();
        }
    }

    /// <summary>Counts a failure to get a descriptor; the first of an episode is logged, once.</summary>
    public void Exhausted(string where)
    {
        var now = _time.GetTimestamp() * 1000 / _time.TimestampFrequency;
        var last = Interlocked.Exchange(ref _lastFailureMs, now);
        if (last == long.MinValue || now - last > EpisodeGapMs)
        {
            ProxyLog.DescriptorsExhausted(_logger, where);
        }
    }

    public void Dispose() => Interlocked.Exchange(ref _spare, null)?.Dispose();

    private static SafeFileHandle? OpenSpare()
    {
        try
        {
            return File.OpenHandle(OperatingSystem.IsWindows() ? "NUL" : "/dev/null");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit
    {
        public ulong Current;
        public ulong Max;
    }

    [LibraryImport("libc", EntryPoint = "getrlimit", SetLastError = true)]
    private static partial int GetRLimit(int resource, out RLimit limit);

    [LibraryImport("libc", EntryPoint = "setrlimit", SetLastError = true)]
    private static partial int SetRLimit(int resource, in RLimit limit);
}
