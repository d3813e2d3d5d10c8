namespace ChronoGuard.Audit;

/// <summary>
/// Walks a chain and reports it valid with its head, or the first position that does not verify and
/// why. The reported seq is always a chain position: the seq that belongs after the last good record
/// (for a gap, the first missing seq; for a duplicate or reordering, the seq that was expected there;
/// for an altered, malformed or unreadable record, its position), so the last good seq is one less.
/// Outside anchors (<c>--expect-head</c>, signed checkpoints) must each be proven by the chain.
/// </summary>
internal static class AuditVerifier
{
    public sealed record Result(bool Valid, long Records, long HeadSeq, string HeadHash, long BrokenSeq, string? Problem, long AnchorSeq)
    {
        /// <summary>The line or log address of the failure, when it has one.</summary>
        public string? Where { get; init; }

        /// <summary>The outside anchors the chain proved (expect-head, checkpoints).</summary>
        public int AnchorsProven { get; init; }

        /// <summary>Seq ranges a repair record names as lost, where the chain goes on above them.</summary>
        public IReadOnlyList<LostRange> Lost { get; init; } = [];
    }

    /// <summary>Seqs <c>From</c> to <c>To</c> handed out and never in the chain (a stop, a crash, a repair), named by the <c>reason=lost</c> record at <c>NamedBy</c>.</summary>
    public readonly record struct LostRange(long From, long To, long NamedBy);

    /// <summary>An outside claim that the chain had <c>Hash</c> at <c>Seq</c>; Required ones must be reached.</summary>
    public sealed record Anchor(long Seq, byte[] Hash, string Label, bool Required);

    public static Result Verify(IEnumerable<AuditReader.Item> items, byte[]? hmacKey, (long Seq, string Hash)? expectHead) =>
        Verify(items, hmacKey, expectHead is { } h ? [new Anchor(h.Seq, Convert.FromHexString(h.Hash), "--expect-head", Required: true)] : []);

    public static Result Verify(IEnumerable<AuditReader.Item> items, byte[]? hmacKey, IReadOnlyList<Anchor> anchors)
    {
        using var chain = new AuditChain(hmacKey);
        var computed = new byte[AuditCodec.HashBytes];
        byte[]? prev = null;
        long expectedSeq = -1, count = 0, anchor = -1;
        var proven = 0;
        var headHash = Convert.ToHexStringLower(new byte[32]);
        var bySeq = new Dictionary<long, List<Anchor>>();
        var lost = new List<LostRange>();
        foreach (var a in anchors)
        {
            (bySeq.TryGetValue(a.Seq, out var list) ? list : bySeq[a.Seq] = []).Add(a);
        }

        foreach (var item in items)
        {
            var position = prev is null ? item.Seq : expectedSeq;
            Result Broken(string why) => new(false, count, count == 0 ? -1 : expectedSeq - 1, headHash, position, why, anchor) { Where = item.Where };
            if (item.Entry is not { } entry)
            {
                return Broken(item.Problem!);
            }

            if (prev is null)
            {
                // The first record kept anchors the chain: seq 0 must start from 32 zero bytes; after
                // retention dropped older segments, the first kept record's prevHash is taken as given,
                // and it proves an outside anchor at the seq just before it.
                anchor = entry.Seq;
                prev = entry.Seq == 0 ? new byte[AuditCodec.HashBytes] : entry.PrevHash;
                expectedSeq = entry.Seq;
                position = entry.Seq;
                if (entry.Seq > 0 && bySeq.TryGetValue(entry.Seq - 1, out var before))
                {
                    foreach (var a in before)
                    {
                        if (!a.Hash.AsSpan().SequenceEqual(entry.PrevHash))
                        {
                            return Broken($"the first kept record's prevHash does not match {a.Label} {a.Seq}:{Convert.ToHexStringLower(a.Hash)}: the chain was rewritten");
                        }

                        proven++;
                    }
                }
            }

            if (entry.Seq > expectedSeq && IsNamedGap(entry, expectedSeq))
            {
                // Seqs handed out and never written (a stop that could not commit them, a crash, or a
                // repair that moved them aside), named by the record that follows them (SPEC §5); its
                // prevHash still links to the last good record.
                lost.Add(new LostRange(expectedSeq, entry.Seq - 1, entry.Seq));
                expectedSeq = entry.Seq;
            }

            if (entry.Seq > expectedSeq)
            {
                return Broken($"missing: the next record is seq {entry.Seq} (a gap of {entry.Seq - expectedSeq})");
            }

            if (entry.Seq < expectedSeq)
            {
                return Broken($"seq {entry.Seq} appears where seq {expectedSeq} belongs (a duplicate or reordered record)");
            }

            if (!entry.PrevHash.AsSpan().SequenceEqual(prev))
            {
                return Broken("prevHash does not match the previous record's hash");
            }

            chain.Compute(prev, item.Canonical, computed);
            if (!computed.AsSpan().SequenceEqual(entry.Hash))
            {
                return Broken(hmacKey is null ? "hash mismatch (record altered, or the chain is keyed: pass --key-file)" : "hash mismatch (record altered, or wrong key)");
            }

            prev = entry.Hash;
            headHash = Convert.ToHexStringLower(entry.Hash);
            if (bySeq.TryGetValue(entry.Seq, out var here))
            {
                foreach (var a in here)
                {
                    if (!a.Hash.AsSpan().SequenceEqual(entry.Hash))
                    {
                        return Broken($"hash differs from {a.Label} {a.Seq}:{Convert.ToHexStringLower(a.Hash)}: the chain was rewritten");
                    }

                    proven++;
                }
            }

            expectedSeq++;
            count++;
        }

        var headSeq = prev is null ? -1 : expectedSeq - 1;
        foreach (var range in lost)
        {
            // An outside anchor in a lost range cannot be proven: the part before the range is (each anchor
            // there was checked above), so the report names the range instead of failing for good.
            var inside = anchors.Where(a => a.Seq >= range.From && a.Seq <= range.To && a.Seq != long.MaxValue).OrderByDescending(a => a.Seq).FirstOrDefault();
            if (inside is not null)
            {
                return new(false, count, headSeq, headHash, range.From, $"{inside.Label} seq {inside.Seq} is in seq {range.From} to {range.To}, which the record at seq {range.NamedBy} names as lost: the log is proven up to seq {range.From - 1} ({proven} outside anchors before the damage verified), not past it", anchor) { AnchorsProven = proven, Lost = lost };
            }
        }

        foreach (var a in anchors)
        {
            if (!a.Required)
            {
                continue;
            }

            if (a.Seq > headSeq)
            {
                return new(false, count, headSeq, headHash, headSeq + 1, $"truncation: the chain ends at seq {headSeq}, {a.Label} is at seq {a.Seq}", anchor);
            }

            if (a.Seq < anchor - 1)
            {
                return new(false, count, headSeq, headHash, anchor, $"{a.Label} seq {a.Seq} precedes the first kept record (seq {anchor}): the kept log can only prove a head at seq {anchor - 1} or later", anchor);
            }
        }

        return new(true, count, headSeq, headHash, -1, null, anchor) { AnchorsProven = proven, Lost = lost };
    }

    /// <summary>A chained <c>system</c> record with <c>reason=lost</c> naming exactly the missing seqs.</summary>
    private static bool IsNamedGap(AuditEntry entry, long expectedSeq) =>
        entry.Kind == AuditKind.System
        && entry.Reason == "lost"
        && entry.Path.StartsWith(AuditWriter.LostRange(expectedSeq, entry.Seq - 1), StringComparison.Ordinal);
}
