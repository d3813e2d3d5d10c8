using System.Net;
using System.Net.Sockets;

namespace ChronoGuard.Net;

/// <summary>
/// Listening sockets that never share their address: a second process on the same port must fail at
/// bind, not take a share of the connections (SPEC §3).
/// </summary>
internal static class ListenSocket
{
    // Linux <sys/socket.h>: SOL_SOCKET and SO_REUSEADDR (asm-generic; x86-64 and arm64 alike).
    private const int SolSocket = 1;
    private const int SoReuseAddr = 2;

    /// <summary>Binds and listens; a <see cref="SocketException"/> (AddressAlreadyInUse when taken) on failure.</summary>
    public static Socket Open(IPEndPoint endpoint, int backlog)
    {
        var listener = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            AllowRebindOverTimeWait(listener);
            listener.Bind(endpoint);
            listener.Listen(backlog);
            return listener;
        }
        catch
        {
            listener.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Plain SO_REUSEADDR, so a restarted sidecar binds while its predecessor's connections sit in
    /// TIME_WAIT. Not <see cref="SocketOptionName.ReuseAddress"/>: on Linux .NET maps that to
    /// SO_REUSEADDR plus SO_REUSEPORT, and SO_REUSEPORT lets a second live listener bind the same port
    /// and have the kernel spread connections across both. Elsewhere nothing is set: Windows lets a
    /// listener bind over TIME_WAIT by default, and its SO_REUSEADDR would allow address theft.
    /// </summary>
    private static void AllowRebindOverTimeWait(Socket listener)
    {
        if (OperatingSystem.IsLinux())
        {
            ReadOnlySpan<byte> on = [1, 0, 0, 0];
            listener.SetRawSocketOption(SolSocket, SoReuseAddr, on);
        }
    }
}
