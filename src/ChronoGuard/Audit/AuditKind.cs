namespace ChronoGuard.Audit;

internal enum AuditKind : byte
{
    Decision = 0,
    Close = 1,
    System = 2,
}
