namespace ChronoGuard.Proxy;

/// <summary>The <c>Socks</c> configuration section (SPEC §8).</summary>
internal sealed class SocksOptions
{
    /// <summary>HOST:PORT of the SOCKS5 listener; empty (the default) is off.</summary>
    public string Listen { get; set; } = string.Empty;

    /// <summary>More SOCKS5 listeners, each bound to one agent (clients that cannot send a login: BSD <c>nc -X 5</c>).</summary>
    public List<ListenerBinding> Listeners { get; set; } = [];
}
