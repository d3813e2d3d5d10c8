using ChronoGuard.Audit;

namespace ChronoGuard.Tests.Audit;

/// <summary>
/// The one gap a chain may have (SPEC §5): seqs handed out and never written, named by the
/// <c>system</c> <c>reason=lost</c> record right after them, exactly. Any other gap stays broken.
/// </summary>
public sealed class AuditLostRangeTests
{
    [Fact]
    public void A_gap_named_exactly_by_the_lost_record_after_it_verifies()
    {
        var result = Verify(Lost("seqs 3..9: the stop could not commit them"));
        Assert.True(result.Valid, result.Problem);
        Assert.Equal(11, result.HeadSeq);
        Assert.Equal(5, result.Records);
    }

    [Theory]
    [InlineData(true, "lost", "seqs 3..8: short by one")]
    [InlineData(true, "lost", "seqs 4..9: starts late")]
    [InlineData(true, "lost", "seqs 3..10: claims itself")]
    [InlineData(true, "lost", "lost seqs 3..9")]
    [InlineData(true, "repair", "seqs 3..9: another reason")]
    [InlineData(false, "lost", "seqs 3..9: not a system record")]
    public void Any_other_gap_is_broken_at_the_first_missing_seq(bool system, string reason, string path)
    {
        var result = Verify(Lost(path, system ? AuditKind.System : AuditKind.Decision, reason));
        Assert.False(result.Valid);
        Assert.Equal(3, result.BrokenSeq);
        Assert.StartsWith("missing: the next record is seq 10", result.Problem, StringComparison.Ordinal);
    }

    private static AuditEntry Lost(string path, AuditKind kind = AuditKind.System, string reason = "lost") =>
        new() { Seq = 10, TimestampNs = 1_000, Kind = kind, Reason = reason, Path = path };

    private static AuditVerifier.Result Verify(AuditEntry gapRecord)
    {
        var entries = new List<AuditEntry>();
        for (var i = 0; i < 3; i++)
        {
            entries.Add(new AuditEntry { Seq = i, TimestampNs = 1_000, Kind = AuditKind.Decision, Host = "h" + i });
        }

        entries.Add(gapRecord);
        entries.Add(new AuditEntry { Seq = 11, TimestampNs = 1_000, Kind = AuditKind.System, Reason = "start" });
        using var chain = new AuditChain(null);
        var prev = new byte[AuditCodec.HashBytes];
        var items = new List<AuditReader.Item>();
        foreach (var e in entries)
        {
            var canonical = AuditCodec.Encode(e);
            var hash = new byte[AuditCodec.HashBytes];
            chain.Compute(prev, canonical, hash);
            e.PrevHash = prev;
            e.Hash = hash;
            items.Add(new AuditReader.Item(e, canonical, $"record {e.Seq}", e.Seq));
            prev = hash;
        }

        return AuditVerifier.Verify(items, null, expectHead: null);
    }
}
