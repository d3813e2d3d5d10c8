namespace ChronoGuard.Resolution;

/// <summary>
/// One rebuilt answer as the guard keeps it (<see cref="DnsAnswerCache"/>): the message without ID, RD
/// or OPT, where its TTLs are, and what it taught the answer memory. Immutable once made, so readers
/// need no lock.
/// </summary>
internal sealed class CachedAnswer(byte[] key, ushort type, byte[] message, ushort[] ttlOffsets, string name, UInt128[] addresses, long expiresMs, long rememberUntilMs)
{
    /// <summary>The question's name, lower case.</summary>
    public byte[] Key { get; } = key;

    public ushort Type { get; } = type;

    public byte[] Message { get; } = message;

    public ushort[] TtlOffsets { get; } = ttlOffsets;

    /// <summary>The name as answered (what <see cref="AnswerMemory"/> keeps).</summary>
    public string Name { get; } = name;

    public UInt128[] Addresses { get; } = addresses;

    /// <summary>When the smallest TTL in it runs out (at most Dns:MaxTtlSeconds).</summary>
    public long ExpiresMs { get; } = expiresMs;

    /// <summary>When the answer memory may forget its addresses (the TTL raised to Dns:MinTtlSeconds).</summary>
    public long RememberUntilMs { get; } = rememberUntilMs;
}
