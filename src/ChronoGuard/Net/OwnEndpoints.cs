using System.Net;

namespace ChronoGuard.Net;

/// <summary>
/// Every address the sidecar itself listens on (proxy, SOCKS, transparent, DNS, stats, admin): a
/// redirected connection whose original destination is one of them would loop through the sidecar, so
/// the transparent listener refuses it (SPEC §10). Listeners are added once as they open; readers see
/// an immutable array swapped in whole.
/// </summary>
internal sealed class OwnEndpoints
{
    private IPEndPoint[] _endpoints = [];

    public void Add(IPEndPoint? endpoint)
    {
        if (endpoint is null)
        {
            return;
        }

        while (true)
        {
            var current = Volatile.Read(ref _endpoints);
            IPEndPoint[] next = [.. current, endpoint];
            if (Interlocked.CompareExchange(ref _endpoints, next, current) == current)
            {
                return;
            }
        }
    }

    /// <summary>
    /// Whether a connection to <paramref name="destination"/> would reach one of our listeners: the same
    /// port, and the same address, or a listener on every address and a destination that is one of this
    /// host's (only looked up when a wildcard listener's port matches, which is rare).
    /// </summary>
    public bool Contains(IPEndPoint destination)
    {
        var endpoints = Volatile.Read(ref _endpoints);
        for (var i = 0; i < endpoints.Length; i++)
        {
            var own = endpoints[i];
            if (own.Port != destination.Port)
            {
                continue;
            }

            if (own.Address.Equals(destination.Address))
            {
                return true;
            }

            if ((own.Address.Equals(IPAddress.Any) || own.Address.Equals(IPAddress.IPv6Any)) && IsLocal(destination.Address))
            {
                return true;
            }
        }

        return false;
    }

    private static bool IsLocal(IPAddress address)
    {
        if (IPAddress.IsLoopback(address))
        {
            return true;
        }

        foreach (var nic in System.Net.NetworkInformation.NetworkInterface.GetAllNetworkInterfaces())
        {
            foreach (var unicast in nic.GetIPProperties().UnicastAddresses)
            {
                if (unicast.Address.Equals(address))
                {
                    return true;
                }
            }
        }

        return false;
    }
}
