namespace ChronoGuard.Proxy;

/// <summary>The <c>Transparent</c> configuration section (SPEC §10).</summary>
internal sealed class TransparentOptions
{
    /// <summary>HOST:PORT the init container's rules redirect the agent's outbound TCP to; empty is off.</summary>
    public string Listen { get; set; } = string.Empty;

    /// <summary>The IPv6 listener (e.g. <c>[::1]:15001</c>); empty means the rules drop IPv6 egress instead.</summary>
    public string Listen6 { get; set; } = string.Empty;

    /// <summary>The agent redirected connections belong to; also the DNS guard's when <c>Dns:Agent</c> is empty.</summary>
    public string Agent { get; set; } = string.Empty;

    /// <summary>
    /// How long a redirected connection may stay silent before it is decided without a name from its bytes:
    /// a protocol where the server speaks first (SMTP, MySQL) sends nothing until it is connected.
    /// </summary>
    public int FirstBytesMs { get; set; } = 200;

    /// <summary>
    /// Destinations the rules leave alone (in-pod services, the proxy port). The sidecar does not apply
    /// them (the kernel does); it checks and logs them so an operator sees what the rules were given.
    /// </summary>
    /// <remarks>Null when not configured (the binder appends to an array it is given, so the default is not one).</remarks>
    public string[]? ExcludeCidrs { get; set; }

    /// <summary><see cref="ExcludeCidrs"/>, or the default: loopback, where in-pod services and the proxy port live.</summary>
    public string[] ExcludedCidrs => ExcludeCidrs is { Length: > 0 } configured ? configured : ["127.0.0.0/8", "::1/128"];

    /// <summary>Several agents in one pod: one listener per agent, each with the UID whose connections the rules send to it.</summary>
    public List<TransparentBinding> Listeners { get; set; } = [];
}
