namespace ChronoGuard.Proxy;

/// <summary>
/// A listener bound to one agent (SPEC §8: <c>Proxy:Listeners</c>, <c>Socks:Listeners</c>): for clients
/// that cannot send proxy credentials, the listening address is the identity.
/// </summary>
internal sealed class ListenerBinding
{
    /// <summary>HOST:PORT to listen on.</summary>
    public string Listen { get; set; } = string.Empty;

    /// <summary>The agent id (from the policy file) every connection accepted here is.</summary>
    public string Agent { get; set; } = string.Empty;
}
