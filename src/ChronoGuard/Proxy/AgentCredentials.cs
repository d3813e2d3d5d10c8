namespace ChronoGuard.Proxy;

/// <summary>
/// What a client offered to prove who it is, in the form its protocol carries it: an HTTP
/// <c>Proxy-Authorization</c> value (Basic or Bearer), or an id and a token (SOCKS5 username/password,
/// RFC 1929). Spans over the front end's own buffers, alive only while the gate decides.
/// </summary>
internal readonly ref struct AgentCredentials
{
    private AgentCredentials(ReadOnlySpan<byte> header, ReadOnlySpan<byte> id, ReadOnlySpan<byte> token, bool isPair)
    {
        Header = header;
        Id = id;
        Token = token;
        IsPair = isPair;
    }

    /// <summary>A <c>Proxy-Authorization</c> value; empty when the client sent none.</summary>
    public ReadOnlySpan<byte> Header { get; }

    public ReadOnlySpan<byte> Id { get; }

    public ReadOnlySpan<byte> Token { get; }

    /// <summary>Whether <see cref="Id"/> and <see cref="Token"/> are what was offered (else <see cref="Header"/>).</summary>
    public bool IsPair { get; }

    public bool IsEmpty => IsPair ? Id.IsEmpty && Token.IsEmpty : Header.IsEmpty;

    public static AgentCredentials None => default;

    public static AgentCredentials FromHeader(ReadOnlySpan<byte> proxyAuthorization) => new(proxyAuthorization, default, default, isPair: false);

    public static AgentCredentials FromPair(ReadOnlySpan<byte> id, ReadOnlySpan<byte> token) => new(default, id, token, isPair: true);
}
