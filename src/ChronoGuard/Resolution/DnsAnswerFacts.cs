namespace ChronoGuard.Resolution;

/// <summary>
/// What <see cref="DnsAnswers.Build"/> learned from an upstream answer while rewriting it: the addresses
/// the question's name (or its CNAME chain) resolved to, where each TTL was written (so a cached copy
/// can say how long is left), the smallest TTL, and the rcode. The caller lends the buffers.
/// </summary>
internal ref struct DnsAnswerFacts(Span<UInt128> addresses, Span<ushort> ttlOffsets)
{
    public readonly Span<UInt128> Addresses = addresses;
    public readonly Span<ushort> TtlOffsets = ttlOffsets;
    public int AddressCount;
    public int TtlCount;
    public uint MinTtl = uint.MaxValue;
    public int Rcode;

    /// <summary>More records than <see cref="TtlOffsets"/> holds: a copy of this answer cannot be aged, so it is not cached.</summary>
    public bool TooManyTtls;

    public void AddTtl(int offset, uint ttl)
    {
        MinTtl = Math.Min(MinTtl, ttl);
        if (TtlCount < TtlOffsets.Length)
        {
            TtlOffsets[TtlCount++] = (ushort)offset;
        }
        else
        {
            TooManyTtls = true;
        }
    }

    public void AddAddress(UInt128 address)
    {
        if (AddressCount < Addresses.Length && !Addresses[..AddressCount].Contains(address))
        {
            Addresses[AddressCount++] = address;
        }
    }
}
