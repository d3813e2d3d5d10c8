namespace ChronoGuard.Http;

internal enum HeadStatus : byte
{
    Incomplete,
    Complete,
    Error,
}
