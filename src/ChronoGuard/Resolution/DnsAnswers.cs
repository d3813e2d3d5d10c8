using System.Buffers.Binary;

namespace ChronoGuard.Resolution;

/// <summary>
/// The messages the guard writes: the query it sends upstream, the answer it gives back (rebuilt from
/// the upstream's, never relayed as received), and its refusals. Rebuilding is what lets the guard
/// promise what an answer holds: only records of the question's CNAME chain, of the types asked for,
/// class IN; HTTPS/SVCB without their <c>ech</c> parameter; names uncompressed (except the question's
/// own); authority only an SOA (so negative answers can be cached by the client); no additional
/// section but an OPT when the client sent one.
/// </summary>
internal static class DnsAnswers
{
    /// <summary>Names followed along a CNAME chain (the question's included); longer chains end there.</summary>
    public const int MaxChain = 8;

    /// <summary>The UDP payload size the guard offers in its OPT records.</summary>
    public const ushort UdpPayload = 1232;

    /// <summary>Query to the upstream: recursion desired, one question, an OPT offering <see cref="UdpPayload"/>.</summary>
    public static int WriteQuery(Span<byte> dst, ushort id, ReadOnlySpan<byte> name, ushort type)
    {
        var w = new DnsWriter(dst);
        w.WriteUInt16(id);
        w.WriteUInt16(0x0100);
        w.WriteUInt16(1);
        w.WriteUInt16(0);
        w.WriteUInt16(0);
        w.WriteUInt16(1);
        w.WriteName(name);
        w.WriteUInt16(type);
        w.WriteUInt16(DnsWire.ClassIn);
        WriteOpt(ref w);
        return w.Overflowed ? -1 : w.Position;
    }

    /// <summary>
    /// A response with no records: the header of <paramref name="query"/> turned into a response with
    /// <paramref name="rcode"/>, and its question when one was read (<paramref name="questionEnd"/> past
    /// it, else <see cref="DnsWire.HeaderLength"/>). Returns the length; 0 when the query is too short to answer.
    /// </summary>
    public static int WriteEmpty(ReadOnlySpan<byte> query, int questionEnd, int rcode, bool truncated, bool opt, Span<byte> dst)
    {
        if (query.Length < DnsWire.HeaderLength)
        {
            return 0;
        }

        var w = new DnsWriter(dst);
        w.WriteUInt16(DnsWire.Id(query));
        w.WriteUInt16(ResponseFlags(DnsWire.Flags(query), rcode, truncated));
        var hasQuestion = questionEnd > DnsWire.HeaderLength;
        w.WriteUInt16((ushort)(hasQuestion ? 1 : 0));
        w.WriteUInt16(0);
        w.WriteUInt16(0);
        w.WriteUInt16((ushort)(opt ? 1 : 0));
        if (hasQuestion)
        {
            w.WriteBytes(query[DnsWire.HeaderLength..questionEnd]);
        }

        if (opt)
        {
            WriteOpt(ref w);
        }

        return w.Overflowed ? 0 : w.Position;
    }

    /// <summary>
    /// Rebuilds the upstream's <paramref name="response"/> to the question (<paramref name="name"/>,
    /// <paramref name="type"/>) into <paramref name="dst"/> with ID 0 and the RD bit clear (the caller
    /// sets both per client). The response must answer exactly that question under <paramref name="id"/>.
    /// </summary>
    public static DnsBuild Build(ReadOnlySpan<byte> response, ushort id, ReadOnlySpan<byte> name, ushort type, bool opt, Span<byte> dst, ref DnsAnswerFacts facts, out int length)
    {
        length = 0;
        if (response.Length < DnsWire.HeaderLength || DnsWire.Id(response) != id)
        {
            return DnsBuild.Malformed;
        }

        var flags = DnsWire.Flags(response);
        if (!DnsWire.IsResponse(flags) || DnsWire.Opcode(flags) != 0 || DnsWire.Count(response, 0) != 1)
        {
            return DnsBuild.Malformed;
        }

        if (DnsWire.Truncated(flags))
        {
            return DnsBuild.Truncated;
        }

        Span<byte> text = stackalloc byte[DnsWire.MaxNameText];
        var offset = DnsWire.HeaderLength;
        if (!DnsWire.TryReadQuestion(response, ref offset, text, out var textLength, out var qtype, out var qclass)
            || qtype != type || qclass != DnsWire.ClassIn || !DnsWire.SameName(text[..textLength], name))
        {
            return DnsBuild.Malformed;
        }

        facts.Rcode = DnsWire.Rcode(flags);
        if (facts.Rcode is not (DnsWire.RcodeNoError or DnsWire.RcodeNxDomain))
        {
            return DnsBuild.Failed;
        }

        // The chain: the question's name, then each CNAME target whose owner is already in it.
        Span<byte> chain = stackalloc byte[MaxChain * DnsWire.MaxNameText];
        Span<int> chainLengths = stackalloc int[MaxChain];
        name.CopyTo(chain);
        chainLengths[0] = name.Length;
        var links = 1;

        var w = new DnsWriter(dst);
        w.WriteUInt16(0);
        w.WriteUInt16(ResponseFlags(0, facts.Rcode, truncated: false));
        w.WriteUInt16(1);
        w.WriteUInt16(0); // answers, patched below
        w.WriteUInt16(0); // authority, patched below
        w.WriteUInt16((ushort)(opt ? 1 : 0));
        var questionAt = w.Position;
        w.WriteName(name);
        w.SetCompressionTarget(questionAt, name);
        w.WriteUInt16(type);
        w.WriteUInt16(DnsWire.ClassIn);

        var answers = 0;
        var authority = 0;
        var count = DnsWire.Count(response, 1);
        for (var i = 0; i < count; i++)
        {
            if (!DnsWire.TryReadRecord(response, ref offset, text, out textLength, out var rr))
            {
                return DnsBuild.Malformed;
            }

            if (rr.Class != DnsWire.ClassIn || (rr.Type != type && rr.Type != DnsWire.TypeCname)
                || !InChain(chain, chainLengths[..links], text[..textLength]))
            {
                continue; // not part of the answer to this question: dropped, never believed
            }

            if (rr.Type == DnsWire.TypeCname && links < MaxChain)
            {
                var at = rr.DataOffset;
                var slot = chain.Slice(links * DnsWire.MaxNameText, DnsWire.MaxNameText);
                if (!DnsWire.TryReadName(response, ref at, slot, out var targetLength))
                {
                    return DnsBuild.Malformed;
                }

                chainLengths[links++] = targetLength;
            }

            if (!WriteRecord(response, rr, text[..textLength], ref w, ref facts))
            {
                return w.Overflowed ? DnsBuild.TooLarge : DnsBuild.Malformed;
            }

            answers++;
        }

        count = DnsWire.Count(response, 2);
        for (var i = 0; i < count; i++)
        {
            if (!DnsWire.TryReadRecord(response, ref offset, text, out textLength, out var rr))
            {
                return DnsBuild.Malformed;
            }

            if (rr.Class == DnsWire.ClassIn && rr.Type == DnsWire.TypeSoa)
            {
                if (!WriteRecord(response, rr, text[..textLength], ref w, ref facts))
                {
                    return w.Overflowed ? DnsBuild.TooLarge : DnsBuild.Malformed;
                }

                authority++;
            }
        }

        if (opt)
        {
            WriteOpt(ref w);
        }

        if (w.Overflowed)
        {
            return DnsBuild.TooLarge;
        }

        w.PatchUInt16(6, (ushort)answers);
        w.PatchUInt16(8, (ushort)authority);
        length = w.Position;
        return DnsBuild.Ok;
    }

    /// <summary>
    /// The client's copy of a rebuilt answer (<paramref name="message"/>, from <see cref="Build"/> without
    /// OPT): its ID and RD, its question as it wrote it (<paramref name="question"/>, same length: the
    /// name in another case), TTLs set to <paramref name="ttl"/> when given (a cached answer says how long
    /// is left), an OPT when it sent one. Longer than <paramref name="limit"/> (its UDP size): an empty
    /// truncated answer, so it asks again over TCP. Allocation-free.
    /// </summary>
    public static int Serve(ReadOnlySpan<byte> message, ReadOnlySpan<ushort> ttlOffsets, uint? ttl, ReadOnlySpan<byte> query, int questionEnd, bool opt, int limit, Span<byte> dst)
    {
        var total = message.Length + (opt ? OptLength : 0);
        if (total > limit || total > dst.Length)
        {
            return WriteEmpty(query, questionEnd, DnsWire.Rcode(DnsWire.Flags(message)), truncated: true, opt, dst);
        }

        message.CopyTo(dst);
        BinaryPrimitives.WriteUInt16BigEndian(dst, DnsWire.Id(query));
        BinaryPrimitives.WriteUInt16BigEndian(dst[2..], ResponseFlags(DnsWire.Flags(query), DnsWire.Rcode(DnsWire.Flags(message)), truncated: false));
        query[DnsWire.HeaderLength..questionEnd].CopyTo(dst[DnsWire.HeaderLength..]);
        if (ttl is { } seconds)
        {
            foreach (var at in ttlOffsets)
            {
                BinaryPrimitives.WriteUInt32BigEndian(dst[at..], seconds);
            }
        }

        if (!opt)
        {
            return message.Length;
        }

        var w = new DnsWriter(dst[message.Length..]);
        WriteOpt(ref w);
        BinaryPrimitives.WriteUInt16BigEndian(dst[10..], 1);
        return total;
    }

    /// <summary>The flags of a response to a query with <paramref name="queryFlags"/>: opcode and RD kept, RA set.</summary>
    public static ushort ResponseFlags(ushort queryFlags, int rcode, bool truncated) =>
        (ushort)(0x8000 | (queryFlags & 0x7900) | 0x0080 | (truncated ? 0x0200 : 0) | (rcode & 0xF));

    private static bool InChain(ReadOnlySpan<byte> chain, ReadOnlySpan<int> lengths, ReadOnlySpan<byte> owner)
    {
        for (var i = 0; i < lengths.Length; i++)
        {
            if (DnsWire.SameName(chain.Slice(i * DnsWire.MaxNameText, lengths[i]), owner))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>One record, its data rewritten where it holds names (decompressed) or SvcParams (no <c>ech</c>).</summary>
    private static bool WriteRecord(ReadOnlySpan<byte> m, in DnsRecord rr, scoped ReadOnlySpan<byte> owner, ref DnsWriter w, ref DnsAnswerFacts facts)
    {
        var data = m.Slice(rr.DataOffset, rr.DataLength);
        w.WriteName(owner);
        w.WriteUInt16(rr.Type);
        w.WriteUInt16(rr.Class);
        var ttlAt = w.Position;
        // A TTL with the top bit set is read as 0 (RFC 2181 §8).
        var ttl = rr.Ttl > int.MaxValue ? 0u : rr.Ttl;
        w.WriteUInt32(ttl);
        var lengthAt = w.Position;
        w.WriteUInt16(0);
        var start = w.Position;
        Span<byte> text = stackalloc byte[DnsWire.MaxNameText];
        var at = rr.DataOffset;
        switch (rr.Type)
        {
            case DnsWire.TypeA:
                if (data.Length != 4)
                {
                    return false;
                }

                facts.AddAddress(AddressKey.FromV4(data));
                w.WriteBytes(data);
                break;
            case DnsWire.TypeAaaa:
                if (data.Length != 16)
                {
                    return false;
                }

                facts.AddAddress(AddressKey.FromV6(data));
                w.WriteBytes(data);
                break;
            case DnsWire.TypeCname or DnsWire.TypeNs or DnsWire.TypePtr or DnsWire.TypeDname:
                if (!ReadName(m, ref at, text, out var n) || at != rr.DataOffset + rr.DataLength)
                {
                    return false;
                }

                w.WriteName(text[..n]);
                break;
            case DnsWire.TypeMx:
                if (data.Length < 3)
                {
                    return false;
                }

                w.WriteBytes(data[..2]);
                at += 2;
                if (!ReadName(m, ref at, text, out n) || at != rr.DataOffset + rr.DataLength)
                {
                    return false;
                }

                w.WriteName(text[..n]);
                break;
            case DnsWire.TypeSoa:
                if (!ReadName(m, ref at, text, out n))
                {
                    return false;
                }

                w.WriteName(text[..n]);
                if (!ReadName(m, ref at, text, out n) || at + 20 != rr.DataOffset + rr.DataLength)
                {
                    return false;
                }

                w.WriteName(text[..n]);
                w.WriteBytes(m.Slice(at, 20));
                // A negative answer lives as long as the smaller of the SOA's TTL and its minimum (RFC 2308 §5).
                ttl = Math.Min(ttl, BinaryPrimitives.ReadUInt32BigEndian(m[(at + 16)..]));
                break;
            case DnsWire.TypeSvcb or DnsWire.TypeHttps:
                if (!WriteSvcb(m, rr, ref w))
                {
                    return false;
                }

                break;
            default:
                w.WriteBytes(data);
                break;
        }

        if (w.Overflowed)
        {
            return false;
        }

        w.PatchUInt32(ttlAt, ttl);
        facts.AddTtl(ttlAt, ttl);
        w.PatchUInt16(lengthAt, (ushort)(w.Position - start));
        return true;
    }

    private static bool ReadName(ReadOnlySpan<byte> m, ref int at, Span<byte> text, out int length) => DnsWire.TryReadName(m, ref at, text, out length);

    /// <summary>SvcPriority, TargetName, then the SvcParams in order, <c>ech</c> left out (RFC 9460 §2.2).</summary>
    private static bool WriteSvcb(ReadOnlySpan<byte> m, in DnsRecord rr, ref DnsWriter w)
    {
        var end = rr.DataOffset + rr.DataLength;
        var at = rr.DataOffset;
        if (rr.DataLength < 3)
        {
            return false;
        }

        w.WriteBytes(m.Slice(at, 2));
        at += 2;
        Span<byte> text = stackalloc byte[DnsWire.MaxNameText];
        if (!DnsWire.TryReadName(m[..end], ref at, text, out var n))
        {
            return false;
        }

        w.WriteName(text[..n]);
        while (at < end)
        {
            if (at + 4 > end)
            {
                return false;
            }

            var key = BinaryPrimitives.ReadUInt16BigEndian(m[at..]);
            var length = BinaryPrimitives.ReadUInt16BigEndian(m[(at + 2)..]);
            if (at + 4 + length > end)
            {
                return false;
            }

            if (key != DnsWire.SvcParamEch)
            {
                w.WriteBytes(m.Slice(at, 4 + length));
            }

            at += 4 + length;
        }

        return true;
    }

    private const int OptLength = 11;

    private static void WriteOpt(ref DnsWriter w)
    {
        w.WriteBytes([0]);
        w.WriteUInt16(DnsWire.TypeOpt);
        w.WriteUInt16(UdpPayload);
        w.WriteUInt32(0);
        w.WriteUInt16(0);
    }
}
