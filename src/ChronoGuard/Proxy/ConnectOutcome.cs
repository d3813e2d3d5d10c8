namespace ChronoGuard.Proxy;

internal enum ConnectOutcome : byte
{
    Connected,
    NameNotResolved,
    Refused,
    Unreachable,
    TimedOut,
    NotAllowed,
}
