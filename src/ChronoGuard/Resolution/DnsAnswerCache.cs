using System.Text;

namespace ChronoGuard.Resolution;

/// <summary>
/// The guard's answers by question (name without case, type), each until its smallest TTL runs out:
/// a fixed table of <c>capacity</c> references (4-way sets; a full set gives up the entry that expires
/// first), each answer at most <see cref="MaxMessage"/> bytes, so the default 4,096 entries hold at
/// most about 8.5 MiB. Entries are immutable and swapped whole, so a lookup takes no lock and
/// allocates nothing; two racing inserts just leave one of them.
/// </summary>
internal sealed class DnsAnswerCache
{
    public const int Ways = 4;
    public const int DefaultCapacity = 4096;

    /// <summary>Larger answers are forwarded every time instead of kept.</summary>
    public const int MaxMessage = 2048;

    private readonly CachedAnswer?[] _slots;
    private readonly int _setMask;

    public DnsAnswerCache(int capacity = DefaultCapacity)
    {
        var sets = capacity / Ways;
        if (sets < 1 || (sets & (sets - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(capacity), "a power of two, at least 4");
        }

        _setMask = sets - 1;
        _slots = new CachedAnswer?[sets * Ways];
    }

    /// <summary>The live answer to (<paramref name="lowerName"/>, <paramref name="type"/>), or null.</summary>
    public CachedAnswer? Find(ReadOnlySpan<byte> lowerName, ushort type, long nowMs)
    {
        var first = SetOf(lowerName, type) * Ways;
        for (var w = first; w < first + Ways; w++)
        {
            if (Volatile.Read(ref _slots[w]) is { } a && a.Type == type && a.ExpiresMs > nowMs && lowerName.SequenceEqual(a.Key))
            {
                return a;
            }
        }

        return null;
    }

    public void Add(CachedAnswer answer, long nowMs)
    {
        var first = SetOf(answer.Key, answer.Type) * Ways;
        var victim = first;
        var victimRank = long.MaxValue;
        for (var w = first; w < first + Ways; w++)
        {
            var a = Volatile.Read(ref _slots[w]);
            if (a is not null && a.Type == answer.Type && answer.Key.AsSpan().SequenceEqual(a.Key))
            {
                victim = w;
                break;
            }

            var rank = a is null ? long.MinValue : a.ExpiresMs <= nowMs ? long.MinValue + 1 : a.ExpiresMs;
            if (rank < victimRank)
            {
                victim = w;
                victimRank = rank;
            }
        }

        Volatile.Write(ref _slots[victim], answer);
    }

    /// <summary>Lower-cases an ASCII name into <paramref name="into"/> (the cache's key form).</summary>
    public static int Lower(ReadOnlySpan<byte> name, Span<byte> into)
    {
        Ascii.ToLower(name, into, out var written);
        return written;
    }

    private int SetOf(ReadOnlySpan<byte> lowerName, ushort type)
    {
        var hash = default(HashCode);
        hash.AddBytes(lowerName);
        hash.Add(type);
        return hash.ToHashCode() & _setMask;
    }
}
