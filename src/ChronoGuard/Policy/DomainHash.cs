namespace ChronoGuard.Policy;

internal static class DomainHash
{
    /// <summary>FNV-1a over the lowercased host without a trailing dot, finished with a 64-bit mix so the
    /// Bloom filter's bit positions taken from different bit ranges are independent.</summary>
    public static ulong Of(ReadOnlySpan<byte> host)
    {
        if (!host.IsEmpty && host[^1] == (byte)'.')
        {
            host = host[..^1];
        }

        var h = 14695981039346656037UL;
        foreach (var b in host)
        {
            h = (h ^ (uint)(b is >= (byte)'A' and <= (byte)'Z' ? b | 0x20 : b)) * 1099511628211UL;
        }

        h ^= h >> 33;
        h *= 0xff51afd7ed558ccdUL;
        h ^= h >> 33;
        return h;
    }
}
