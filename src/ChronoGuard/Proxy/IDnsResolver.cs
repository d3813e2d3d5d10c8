using System.Net;

namespace ChronoGuard.Proxy;

/// <summary>Name resolution for upstream connects; an interface so tests can pin names to addresses.</summary>
internal interface IDnsResolver
{
    /// <summary>Addresses for <paramref name="host"/>, or an empty array when the name does not resolve.</summary>
    ValueTask<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken);
}
