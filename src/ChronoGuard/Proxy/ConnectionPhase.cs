namespace ChronoGuard.Proxy;

/// <summary>Where a connection is, so the heartbeat knows which timeout applies.</summary>
internal enum ConnectionPhase
{
    /// <summary>A request head (or a tunnel's ClientHello) has started, or the connection is new: HeaderTimeoutMs.</summary>
    ReadingHead,
    /// <summary>Keep-alive, waiting for the next request: IdleTimeoutMs, and drain closes it.</summary>
    Idle,
    /// <summary>Connecting or waiting for the upstream's answer: IdleTimeoutMs since the last byte.</summary>
    Busy,
    /// <summary>Relaying a request body from the client: BodyTimeoutMs since the last body byte.</summary>
    ReadingBody,
    /// <summary>CONNECT tunnel: IdleTimeoutMs since the last byte either way.</summary>
    Tunnel,
    /// <summary>Held for an operator's approval (SPEC §9): its own timeout (Admin:AskTimeoutMs) and drain end it, not the clock.</summary>
    Held,
    /// <summary>After a refusal, reading what the client still sends so our answer is not lost to a reset.</summary>
    Lingering,
    Closed,
}
