namespace ChronoGuard.Proxy;

/// <summary>One agent's transparent listener (SPEC §10 <c>Transparent:Listeners</c>): the rules redirect the TCP of <see cref="Uid"/> here.</summary>
internal sealed class TransparentBinding
{
    /// <summary>HOST:PORT to listen on.</summary>
    public string Listen { get; set; } = string.Empty;

    /// <summary>The agent id (from the policy file) every connection redirected here is.</summary>
    public string Agent { get; set; } = string.Empty;

    /// <summary>The user the agent runs as: only the init script uses it, to send that user's connections here.</summary>
    public int Uid { get; set; } = -1;
}
