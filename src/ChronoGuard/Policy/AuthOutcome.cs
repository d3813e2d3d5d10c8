namespace ChronoGuard.Policy;

internal enum AuthOutcome : byte
{
    Ok,
    Missing,
    Invalid,
    Suspended,
}
