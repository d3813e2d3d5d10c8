namespace ChronoGuard.Proxy;

internal enum TimeoutKind
{
    None,
    Header,
    Idle,
    Body,
    Drain,
    Linger,
    Revoked,
}
