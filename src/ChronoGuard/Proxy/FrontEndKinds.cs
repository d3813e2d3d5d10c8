namespace ChronoGuard.Proxy;

/// <summary>What each <see cref="FrontEnd"/> is, said once for the gate, the scope and the record.</summary>
internal static class FrontEndKinds
{
    /// <summary>Relayed as a tunnel: the policy sees <c>CONNECT</c>, and no method, path or user agent.</summary>
    public static bool IsTunnel(this FrontEnd frontEnd) => frontEnd is FrontEnd.Connect or FrontEnd.Socks or FrontEnd.Transparent;
}
