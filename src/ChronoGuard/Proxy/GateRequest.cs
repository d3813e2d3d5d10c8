namespace ChronoGuard.Proxy;

/// <summary>
/// One request as every front end describes it to the gate, whatever its protocol: where it goes,
/// what it asks (method, path and user agent where the protocol shows them), and how the agent may be
/// identified (credentials it offered, or the agent its listener is bound to, SPEC §8). Spans over the
/// front end's buffers: valid only during <see cref="IRequestGate.Decide"/>, which copies nothing.
/// </summary>
internal readonly ref struct GateRequest
{
    public required FrontEnd FrontEnd { get; init; }

    /// <summary>ASCII host as the client wrote it (case and a trailing dot are the matcher's business).</summary>
    public required ReadOnlySpan<byte> Host { get; init; }

    public required int Port { get; init; }

    /// <summary>The HTTP method; empty for tunnels (the policy sees <c>CONNECT</c>).</summary>
    public ReadOnlySpan<byte> Method { get; init; }

    /// <summary>The normalised path without its query; empty for tunnels.</summary>
    public ReadOnlySpan<byte> Path { get; init; }

    /// <summary>The path as an origin that drops <c>;params</c> reads it, when the path has any (see <see cref="HasPathParameters"/>).</summary>
    public ReadOnlySpan<byte> PathWithoutParameters { get; init; }

    public bool HasPathParameters { get; init; }

    public ReadOnlySpan<byte> UserAgent { get; init; }

    public AgentCredentials Credentials { get; init; }

    /// <summary>The agent the listener that accepted the connection is bound to, or null (SPEC §8).</summary>
    public string? ListenerAgent { get; init; }

    /// <summary>
    /// The connection was redirected to a transparent listener (SPEC §10): the agent is its listener's,
    /// and the record says <c>identity: transparent</c>.
    /// </summary>
    public bool Redirected { get; init; }

    /// <summary>
    /// The request head as received (request line and header fields) where the protocol has one; empty
    /// otherwise. Credential placeholders are looked for here (SPEC §7: every header and the target).
    /// </summary>
    public ReadOnlySpan<byte> RawHead { get; init; }

    public bool IsTunnel => FrontEnd.IsTunnel();
}
