using System.Numerics;

namespace ChronoGuard.Policy;

/// <summary>
/// Domains an agent reached in one hour: a Bloom filter sized for the quota (16 bits per expected
/// domain, 3 hashes: about 0.3% false positives, i.e. a new domain occasionally passing as seen,
/// which errs on the side of the agent) plus a count of the new ones.
/// </summary>
internal sealed class FanOutHour
{
    private readonly ulong[] _bits;
    private readonly int _mask;
    private int _count;

    public FanOutHour(long hour, int quota)
    {
        Hour = hour;
        var bits = (int)BitOperations.RoundUpToPowerOf2((uint)Math.Clamp(quota * 16, 1024, 1 << 24));
        _bits = new ulong[bits / 64];
        _mask = bits - 1;
    }

    public long Hour { get; }

    public int Count => Volatile.Read(ref _count);

    public bool TryNote(ulong hash, int quota)
    {
        var h1 = (int)(hash & (uint)_mask);
        var h2 = (int)((hash >> 21) & (uint)_mask);
        var h3 = (int)((hash >> 42) & (uint)_mask);
        if (IsSet(h1) && IsSet(h2) && IsSet(h3))
        {
            return true;
        }

        if (Interlocked.Increment(ref _count) > quota)
        {
            Interlocked.Decrement(ref _count);
            return false;
        }

        Set(h1);
        Set(h2);
        Set(h3);
        return true;
    }

    private bool IsSet(int bit) => (Volatile.Read(ref _bits[bit >> 6]) & (1UL << (bit & 63))) != 0;

    private void Set(int bit) => Interlocked.Or(ref _bits[bit >> 6], 1UL << (bit & 63));
}
