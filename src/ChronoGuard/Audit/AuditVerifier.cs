namespace ChronoGuard.Audit;

/// <summary>Walks a chain and reports it valid with its head, or the first broken seq and why.</summary>
internal static class AuditVerifier
{
    public sealed record Result(bool Valid, long Records, long HeadSeq, string HeadHash, long BrokenSeq, string? Problem, long AnchorSeq);

    public static Result Verify(IEnumerable<AuditReader.Item> items, byte[]? hmacKey, (long Seq, string Hash)? expectHead)
    {
        using var chain = new AuditChain(hmacKey);
        var computed = new byte[AuditCodec.HashBytes];
        byte[]? prev = null;
        long expectedSeq = -1, count = 0, anchor = -1;
        var headHash = Convert.ToHexStringLower(new byte[32]);
        foreach (var (entry, canonical) in items)
        {
            Result Broken(string why) => new(false, count, expectedSeq - 1, headHash, entry.Seq, why, anchor);
            if (entry.Seq < 0)
            {
                return Broken("not a decodable record");
            }

            if (prev is null)
            {
                // The first record kept anchors the chain: seq 0 must start from 32 zero bytes; after
                // retention dropped older segments, the first kept record's prevHash is taken as given.
                anchor = entry.Seq;
                prev = entry.Seq == 0 ? new byte[AuditCodec.HashBytes] : entry.PrevHash;
                expectedSeq = entry.Seq;
            }

            if (entry.Seq > expectedSeq)
            {
                return Broken($"gap: expected seq {expectedSeq}, found {entry.Seq}");
            }

            if (entry.Seq < expectedSeq)
            {
                return Broken($"reordering: seq {entry.Seq} after {expectedSeq - 1}");
            }

            if (!entry.PrevHash.AsSpan().SequenceEqual(prev))
            {
                return Broken("prevHash does not match the previous record's hash");
            }

            chain.Compute(prev, canonical, computed);
            if (!computed.AsSpan().SequenceEqual(entry.Hash))
            {
                return Broken(hmacKey is null ? "hash mismatch (record altered, or the chain is keyed: pass --key-file)" : "hash mismatch (record altered, or wrong key)");
            }

            prev = entry.Hash;
            headHash = Convert.ToHexStringLower(entry.Hash);
            if (expectHead is { } anchorHead && entry.Seq == anchorHead.Seq && !string.Equals(headHash, anchorHead.Hash, StringComparison.OrdinalIgnoreCase))
            {
                return Broken("hash mismatch against --expect-head: the chain was rewritten");
            }

            expectedSeq++;
            count++;
        }

        var headSeq = prev is null ? -1 : expectedSeq - 1;
        if (expectHead is { } expected)
        {
            if (headSeq < expected.Seq)
            {
                return new(false, count, headSeq, headHash, headSeq + 1, $"truncation: the chain ends at seq {headSeq}, expected head {expected.Seq}", anchor);
            }
        }

        return new(true, count, headSeq, headHash, -1, null, anchor);
    }
}
