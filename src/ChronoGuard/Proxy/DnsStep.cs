namespace ChronoGuard.Proxy;

/// <summary>What <see cref="DnsGuard.Answer"/> did with a query.</summary>
internal enum DnsStep
{
    /// <summary>An answer was written: send it.</summary>
    Answered,

    /// <summary>Nothing can be answered (no header, or a response sent to the guard): send nothing.</summary>
    Dropped,

    /// <summary>Allowed and not cached: ask the upstream (<see cref="DnsGuard.ForwardAsync"/>).</summary>
    Forward,
}
