namespace ChronoGuard.Audit;

/// <summary>Sees each record on the writer thread as it is chained (seq and ts final); must be quick and must not throw or block.</summary>
internal delegate void AuditRecordObserver(in AuditRecord record);
