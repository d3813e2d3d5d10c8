namespace ChronoGuard.Audit;

/// <summary>
/// System records: the event goes in <c>reason</c> (start, stop, policy_load, policy_reject), the policy
/// file's SHA-256 in <c>policy</c>, and the file path or the rejection message in <c>path</c>.
/// </summary>
internal static class SystemRecords
{
    public static long Append(AuditWriter writer, string evt, string? sha256 = null, string? detail = null)
    {
        var record = Make(evt, sha256, detail);
        return writer.Append(ref record);
    }

    /// <summary>
    /// A system record about an agent's destinations (runtime grants, SPEC §9): the agent in <c>agent</c>,
    /// the domains in <c>host</c>, an identifier in <c>rule</c>, beside the event, digest and detail.
    /// </summary>
    public static long Append(AuditWriter writer, string evt, string? sha256, string? detail, string agent, string host, string id)
    {
        var record = Make(evt, sha256, detail);
        record.Set(AuditText.Agent, agent);
        record.Set(AuditText.Host, host);
        record.Set(AuditText.Rule, id);
        return writer.Append(ref record);
    }

    /// <summary>As <see cref="Append"/>, but a full ring is waited out without holding a thread.</summary>
    public static async Task<long> AppendAsync(AuditWriter writer, string evt, string? sha256 = null, string? detail = null)
    {
        await writer.WaitForRoomAsync().ConfigureAwait(false);
        return Append(writer, evt, sha256, detail);
    }

    private static AuditRecord Make(string evt, string? sha256, string? detail)
    {
        var record = default(AuditRecord);
        record.Kind = AuditKind.System;
        record.Set(AuditText.Reason, evt);
        record.Set(AuditText.Policy, sha256);
        record.Set(AuditText.Path, detail);
        return record;
    }
}
