namespace ChronoGuard.Proxy;

/// <summary>The <c>Dns</c> configuration section (SPEC §10): the DNS guard.</summary>
internal sealed class DnsOptions
{
    /// <summary>HOST:PORT of the guard, UDP and TCP alike; empty (the default) is off.</summary>
    public string Listen { get; set; } = string.Empty;

    /// <summary>HOST:PORT of the resolver allowed questions go to; empty: the first nameserver of /etc/resolv.conf.</summary>
    public string Upstream { get; set; } = string.Empty;

    /// <summary>The agent whose policies decide the questions; empty: <c>Transparent:Agent</c>.</summary>
    public string Agent { get; set; } = string.Empty;

    /// <summary>Answers are remembered (for the transparent listener's name check) at least this long, whatever their TTL.</summary>
    public int MinTtlSeconds { get; set; } = 30;

    /// <summary>Answers are remembered and served from the cache at most this long.</summary>
    public int MaxTtlSeconds { get; set; } = 3600;

    /// <summary><c>nxdomain</c> (the default) or <c>refused</c>: the rcode of a refused question.</summary>
    public string RefuseStyle { get; set; } = "nxdomain";

    /// <summary>How long the upstream has to answer before the client is told SERVFAIL.</summary>
    public int UpstreamTimeoutMs { get; set; } = 2000;
}
