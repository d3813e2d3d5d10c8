namespace ChronoGuard.Proxy;

/// <summary>
/// Which way a request came in: the record's <c>method</c> names it for tunnels (SPEC §4: rules see
/// <c>CONNECT</c> as the method of every tunnel, whatever front end carried it).
/// </summary>
internal enum FrontEnd : byte
{
    /// <summary>Plain HTTP forwarding: the record's method is the request's.</summary>
    Http,

    /// <summary>An HTTP CONNECT tunnel.</summary>
    Connect,

    /// <summary>A SOCKS5 CONNECT tunnel (SPEC §8).</summary>
    Socks,
}
