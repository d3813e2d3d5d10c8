using System.Net;
using System.Text;
using ChronoGuard.Net;

namespace ChronoGuard.Proxy;

/// <summary>
/// One upstream connection, owned by the client connection it serves (kept across keep-alive requests
/// and for a tunnel's life, dropped by the request scope's exit). It is made only by <see cref="Dialer"/>
/// from addresses the guard passed, reused only after the guard passes its address again, aborted from
/// any thread. Bytes go up only through <see cref="RequestScope.SendUpstreamAsync(ReadOnlyMemory{byte})"/>,
/// which charges egress first; this type has no send of its own.
/// </summary>
internal sealed class Upstream : IDisposable
{
    public Upstream(Transport transport, string host, int port, IPAddress address)
    {
        Transport = transport;
        Host = host;
        Port = port;
        Address = address;
    }

    /// <summary>The bytes: read responses through its pipe; sends only through the request scope.</summary>
    public Transport Transport { get; }

    public string Host { get; }

    public int Port { get; }

    public IPAddress Address { get; }

    public bool Serves(ReadOnlySpan<byte> host, int port) => port == Port && Ascii.EqualsIgnoreCase(host, Host);

    /// <summary>
    /// Whether this upstream may carry the next keep-alive request: not when the origin sent bytes past
    /// its response (they would be read as the next response). Its pipe is kept: with zero-byte reads
    /// an idle pipe holds no buffer, and dropping it between requests saved nothing measurable
    /// (perf/idle-keepalive-memory: 9.0 against 9.1 KiB) while costing a new stream and pipe per request.
    /// </summary>
    public bool TryPark()
    {
        if (Transport.HasInput && Transport.Input.TryRead(out var leftover))
        {
            var clean = leftover.Buffer.IsEmpty && !leftover.IsCompleted && !leftover.IsCanceled;
            Transport.Input.AdvanceTo(leftover.Buffer.Start);
            return clean;
        }

        return true;
    }

    /// <summary>From any thread: pending reads and sends on this upstream fail at once.</summary>
    public void Abort() => Transport.Abort();

    public void Dispose() => Transport.Dispose();
}
