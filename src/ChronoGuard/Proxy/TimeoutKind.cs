namespace ChronoGuard.Proxy;

internal enum TimeoutKind
{
    None,
    Header,
    Idle,
    Drain,
    Linger,
    Revoked,
}
