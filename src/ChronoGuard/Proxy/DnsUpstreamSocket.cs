using System.Net;
using System.Net.Sockets;

namespace ChronoGuard.Proxy;

/// <summary>
/// One of <see cref="DnsUpstream"/>'s UDP sockets, connected to the upstream (so the kernel drops
/// datagrams from any other address), its port picked at random by the kernel, with a thread of its own
/// blocked in <c>recv</c> (<see cref="DnsUpstream"/> says why). Used for a number of questions, then
/// retired: it takes no new question, still receives the answers to those it carries, and is closed when
/// the last of them is answered or given up.
/// </summary>
internal sealed class DnsUpstreamSocket
{
    /// <summary>In <see cref="_carrying"/>: closed, takes no question (half of int's range below 0, so counting never wraps it back).</summary>
    private const int Closed = int.MinValue / 2;

    private int _carrying;
    private int _retired;
    private int _closed;
    private int _sent;

    public DnsUpstreamSocket(IPEndPoint upstream, int index)
    {
        Index = index;
        // A burst of answers (a quarter of the guard's 1,024 questions in flight) must not overflow the
        // default receive buffer while this socket's thread is not running; the kernel caps it at rmem_max.
        Socket = new Socket(upstream.AddressFamily, SocketType.Dgram, ProtocolType.Udp) { ReceiveBufferSize = 1 << 20 };
        try
        {
            Socket.Connect(upstream);
        }
        catch
        {
            Socket.Dispose();
            throw;
        }
    }

    public Socket Socket { get; }

    /// <summary>Its place among the exchange's sockets (its replacement takes the same).</summary>
    public int Index { get; }

    public Thread? Thread { get; set; }

    /// <summary>Its receive thread ends when it sees this (after the <c>recv</c> that shutting it down returns).</summary>
    public bool IsClosed => Volatile.Read(ref _closed) != 0;

    public bool IsRetired => Volatile.Read(ref _retired) != 0;

    /// <summary>Questions sent on it so far.</summary>
    public int Sent => Volatile.Read(ref _sent);

    public void CountSent() => Interlocked.Increment(ref _sent);

    /// <summary>Takes one more question; false when the socket is already closed (ask the one that replaced it).</summary>
    public bool TryCarry()
    {
        if (Interlocked.Increment(ref _carrying) > 0 && !IsClosed)
        {
            return true;
        }

        Interlocked.Decrement(ref _carrying);
        return false;
    }

    /// <summary>One question it carried is answered or given up; the last one closes a retired socket.</summary>
    public void Done()
    {
        if (Interlocked.Decrement(ref _carrying) == 0 && IsRetired)
        {
            TryClose();
        }
    }

    /// <summary>No new question; closed now if it carries none, else when <see cref="Done"/> sees the last.</summary>
    public void Retire()
    {
        Volatile.Write(ref _retired, 1);
        TryClose();
    }

    /// <summary>Closed whatever it carries (the exchange is disposed and has given up every question).</summary>
    public void Close()
    {
        Volatile.Write(ref _retired, 1);
        Interlocked.Exchange(ref _carrying, Closed);
        Shut();
    }

    private void TryClose()
    {
        if (Interlocked.CompareExchange(ref _carrying, Closed, 0) == 0)
        {
            Shut();
        }
    }

    private void Shut()
    {
        Interlocked.Exchange(ref _closed, 1);
        try
        {
            // Closing a socket does not wake a thread blocked in recv on Linux; shutting its reading side does (recv returns 0).
            Socket.Shutdown(SocketShutdown.Receive);
        }
        catch (SocketException)
        {
        }
        catch (ObjectDisposedException)
        {
        }
    }
}
