namespace ChronoGuard.Proxy;

internal enum SniVerdict : byte
{
    NeedMore,
    Pass,
    Refuse,
}
