using System.Net;
using System.Net.Sockets;

namespace ChronoGuard.Proxy;

/// <summary>The operating system resolver (getaddrinfo through <see cref="Dns"/>).</summary>
internal sealed class SystemDnsResolver : IDnsResolver
{
    /// <summary>The shared instance.</summary>
    public static readonly SystemDnsResolver Instance = new();

    /// <inheritdoc />
    public async ValueTask<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken)
    {
        try
        {
            return await Dns.GetHostAddressesAsync(host, cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException)
        {
            // NXDOMAIN and friends are an answer ("no such host"), not a fault of the proxy.
            return [];
        }
    }
}
