namespace ChronoGuard;

/// <summary>
/// One spin lock per set of a set-associative table (the unauthenticated limiter, the DNS answer
/// memory): a set is held for a few loads and stores, never across a wait, so a short spin beats a
/// kernel lock, and two sets never share a lock. One lock per 64-byte line, so two sets taken on two
/// cores do not share a cache line.
/// </summary>
internal readonly struct SetLocks
{
    private const int Stride = 16;

    private readonly int[] _locks;

    public SetLocks(int sets) => _locks = new int[sets * Stride];

    public void Enter(int set)
    {
        ref var gate = ref _locks[set * Stride];
        if (Interlocked.CompareExchange(ref gate, 1, 0) == 0)
        {
            return;
        }

        // Never sleep(1): the holder is a few instructions from letting go.
        var spin = default(SpinWait);
        do
        {
            spin.SpinOnce(sleep1Threshold: -1);
        }
        while (Interlocked.CompareExchange(ref gate, 1, 0) != 0);
    }

    public void Exit(int set) => Volatile.Write(ref _locks[set * Stride], 0);
}
