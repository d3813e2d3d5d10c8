namespace ChronoGuard.Proxy;

/// <summary>Whether more ClientHello bytes can still come.</summary>
internal enum ClientHelloEnd : byte
{
    /// <summary>The client may send more.</summary>
    Open,

    /// <summary>The client closed its side: what is there is all there will be.</summary>
    Eof,

    /// <summary>The header timeout passed before the hello was complete.</summary>
    TimedOut,
}
