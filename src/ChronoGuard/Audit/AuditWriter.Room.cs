namespace ChronoGuard.Audit;

/// <summary>
/// Asynchronous back-pressure. A full ring is waited out, never dropped (SPEC §5); an async producer
/// awaits <see cref="WaitForRoomAsync"/> before it appends, so a burst that fills the ring parks
/// continuations instead of spinning pool threads. The writer completes every waiter when a drain
/// has freed slots, or when it faults or stops (the append then takes the unrecorded path at once).
/// </summary>
internal sealed partial class AuditWriter
{
    // Taken only when the ring is full: the no-wait path reads two counters and takes no lock.
    private readonly Lock _roomLock = new();
    private readonly List<AuditRoomWaiter> _roomWaiters = [];
    private readonly Stack<AuditRoomWaiter> _roomPool = new();
    private int _roomWaiting;

    /// <summary>
    /// Completes when the ring has room for a record (at once, allocation-free, in the common case), or
    /// when the writer has faulted or is stopping. Room is not reserved: a producer that loses the
    /// race for the last slot waits in <see cref="Claim"/> until the next drain, which is short.
    /// </summary>
    public ValueTask WaitForRoomAsync()
    {
        if (HasRoom)
        {
            return default;
        }

        AuditRoomWaiter waiter;
        lock (_roomLock)
        {
            waiter = _roomPool.TryPop(out var pooled) ? pooled : new AuditRoomWaiter(this);
            waiter.Reset();
            _roomWaiters.Add(waiter);
            // A full fence before the recheck below; the writer fences between freeing slots and
            // reading this count, so one side always sees the other and no wake-up is lost.
            Interlocked.Increment(ref _roomWaiting);
        }

        Interlocked.Increment(ref _backPressure);
        Wake();
        if (HasRoom)
        {
            ReleaseRoomWaiters();
        }

        return new ValueTask(waiter, waiter.Version);
    }

    /// <summary>Producers parked in <see cref="WaitForRoomAsync"/> right now.</summary>
    internal int RoomWaiters => Volatile.Read(ref _roomWaiting);

    private bool HasRoom => _ring.Depth < _ring.Capacity || Volatile.Read(ref _faulted) != 0 || _stopping;

    /// <summary>Writer thread after a drain freed slots (behind a full fence), and every fault or stop.</summary>
    private void ReleaseRoomWaiters()
    {
        if (Volatile.Read(ref _roomWaiting) == 0)
        {
            return;
        }

        lock (_roomLock)
        {
            foreach (var waiter in _roomWaiters)
            {
                waiter.Complete();
            }

            _roomWaiters.Clear();
            Volatile.Write(ref _roomWaiting, 0);
        }
    }

    internal void ReturnRoomWaiter(AuditRoomWaiter waiter)
    {
        lock (_roomLock)
        {
            _roomPool.Push(waiter);
        }
    }
}
