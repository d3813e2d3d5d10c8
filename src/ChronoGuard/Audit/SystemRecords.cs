namespace ChronoGuard.Audit;

/// <summary>
/// System records: the event goes in <c>reason</c> (start, stop, policy_load, policy_reject), the policy
/// file's SHA-256 in <c>policy</c>, and the file path or the rejection message in <c>path</c>.
/// </summary>
internal static class SystemRecords
{
    public static long Append(AuditWriter writer, string evt, string? sha256 = null, string? detail = null)
    {
        var record = default(AuditRecord);
        record.Kind = AuditKind.System;
        record.Set(AuditText.Reason, evt);
        record.Set(AuditText.Policy, sha256);
        record.Set(AuditText.Path, detail);
        return writer.Append(ref record);
    }
}
