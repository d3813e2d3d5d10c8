using ChronoGuard.Admin;
using ChronoGuard.Audit;

namespace ChronoGuard.Tests.Admin;

/// <summary>The denial table's documented bound: a flood of distinct refused names costs the least recently seen rows, never memory, and says so.</summary>
public sealed class DenialTableTests
{
    private static AuditRecord Refusal(string host, long ns, string decision = "DENY", bool enforced = true)
    {
        var r = default(AuditRecord);
        r.Kind = AuditKind.Decision;
        r.TimestampNs = ns;
        r.Port = 443;
        r.Enforced = enforced;
        r.Set(AuditText.Agent, "bot");
        r.Set(AuditText.Host, host);
        r.Set(AuditText.Decision, decision);
        r.Set(AuditText.Reason, "default_deny");
        return r;
    }

    [Fact]
    public void Distinct_names_past_the_bound_replace_the_oldest_and_are_counted()
    {
        var table = new DenialTable();
        var flood = DenialTable.Capacity * 3;
        for (var i = 0; i < flood; i++)
        {
            var r = Refusal($"n{i}.flood.test", i + 1);
            table.Observe(r);
        }

        var rows = table.Snapshot(0, null);
        Assert.InRange(rows.Count, DenialTable.Capacity * 9 / 10, DenialTable.Capacity);
        Assert.Equal(flood - rows.Count, table.Evicted);
        // The newest is always kept (it was just written); what was dropped is older than what was kept.
        Assert.Contains(rows, e => e.Host == $"n{flood - 1}.flood.test");
        Assert.DoesNotContain(rows, e => e.Host == "n0.flood.test");
    }

    [Fact]
    public void One_destination_is_one_row_counted_and_allows_are_not_denials()
    {
        var table = new DenialTable();
        for (var i = 0; i < 5; i++)
        {
            var r = Refusal("same.test", 100 + i);
            table.Observe(r);
        }

        var allow = Refusal("same.test", 200, decision: "ALLOW");
        table.Observe(allow);
        var observed = Refusal("same.test", 300, enforced: false);
        table.Observe(observed);
        var observedAllow = Refusal("other.test", 300, decision: "ALLOW", enforced: false);
        table.Observe(observedAllow);

        var rows = table.Snapshot(0, null);
        Assert.Equal(2, rows.Count);
        Assert.Equal((5L, 100L, 104L, true), (rows[0].Count, rows[0].FirstNs, rows[0].LastNs, rows[0].Enforced));
        Assert.Equal((1L, false), (rows[1].Count, rows[1].Enforced));
        Assert.Single(table.Snapshot(300, null));
        Assert.Empty(table.Snapshot(0, "nobody"));
    }
}
