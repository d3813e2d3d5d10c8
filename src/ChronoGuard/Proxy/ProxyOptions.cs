namespace ChronoGuard.Proxy;

/// <summary>The <c>Proxy</c> configuration section (SPEC §3).</summary>
internal sealed class ProxyOptions
{
    /// <summary>HOST:PORT of the proxy listener.</summary>
    public string Listen { get; set; } = "127.0.0.1:3128";

    /// <summary>Open client connections beyond this are answered 503 and closed.</summary>
    public int MaxConnections { get; set; } = 10_000;

    /// <summary>Concurrent CONNECT tunnels one agent may hold.</summary>
    public int MaxTunnelsPerAgent { get; set; } = 512;

    /// <summary>DNS resolution plus TCP connect to the upstream; past it the client gets 504.</summary>
    public int ConnectTimeoutMs { get; set; } = 10_000;

    /// <summary>Time for a request head to arrive once it has started; past it the client gets 408.</summary>
    public int HeaderTimeoutMs { get; set; } = 10_000;

    /// <summary>A request body that sends no byte for this long is refused (408) and its upstream closed.</summary>
    public int BodyTimeoutMs { get; set; } = 30_000;

    /// <summary>A tunnel or keep-alive connection with no bytes either way for this long is closed.</summary>
    public int IdleTimeoutMs { get; set; } = 300_000;

    /// <summary>Request line plus headers; beyond it the client gets 431.</summary>
    public int MaxHeaderBytes { get; set; } = 32 * 1024;

    /// <summary>On SIGTERM, how long open tunnels may go on before they are closed.</summary>
    public int DrainTimeoutMs { get; set; } = 15_000;

    /// <summary>
    /// Whether a new connection runs on the accept loop's thread up to its first wait (null: when the
    /// process has one core). Internal, so configuration binding does not see it: tests set it to run
    /// the one-core path on any machine.
    /// </summary>
    internal bool? ServeInline { get; set; }

    /// <summary>More HTTP proxy listeners, each bound to one agent (SPEC §8).</summary>
    public List<ListenerBinding> Listeners { get; set; } = [];
}
