using System.Runtime.InteropServices;

namespace ChronoGuard.Net;

/// <summary>The user this process runs as: the pod's rules exclude its connections from capture (SPEC §10).</summary>
internal static partial class ProcessUser
{
    public static uint EffectiveUid() => Geteuid();

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint Geteuid();
}
