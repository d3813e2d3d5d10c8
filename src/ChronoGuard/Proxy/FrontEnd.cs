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

    /// <summary>
    /// A request inside an inspected TLS tunnel (SPEC §7): decided like plain HTTP, with its own method
    /// and path; its host is the tunnel's (SNI = CONNECT host = <c>Host</c>, checked by the front end).
    /// </summary>
    Inspected,

    /// <summary>
    /// A connection the init container's rules redirected to the transparent listener (SPEC §10) that
    /// is relayed as a tunnel (TLS, SSH, anything that is not plain HTTP): the policy sees
    /// <c>CONNECT</c> to the name its bytes or the DNS guard gave, on the original destination's port;
    /// the record's method is <c>TRANSPARENT</c> (SPEC §4: the record names the front end).
    /// A plain-HTTP request on such a connection is <see cref="Http"/>, with its own method and path.
    /// </summary>
    Transparent,
}
