namespace ChronoGuard.Policy;

internal enum TunnelVerdict : byte
{
    Keep,
    PolicyRevoked,
    WindowClosed,
}
