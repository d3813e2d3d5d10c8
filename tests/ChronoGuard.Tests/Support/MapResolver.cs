using System.Net;
using ChronoGuard.Proxy;

namespace ChronoGuard.Tests.Support;

/// <summary>A resolver with fixed answers; unknown names do not resolve; <see cref="Hang"/> never answers.</summary>
internal sealed class MapResolver : IDnsResolver
{
    private readonly Dictionary<string, IPAddress[]> _map = new(StringComparer.OrdinalIgnoreCase);

    public bool Hang { get; init; }

    public IPAddress this[string name]
    {
        set => _map[name] = [value];
    }

    /// <summary>A name that resolves to several addresses, in this order.</summary>
    public void Set(string name, params IPAddress[] addresses) => _map[name] = addresses;

    public async ValueTask<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken)
    {
        if (Hang)
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }

        // A copy, as a real resolver gives: the proxy reorders the answer in place.
        return _map.TryGetValue(host, out var a) ? [.. a] : [];
    }
}
