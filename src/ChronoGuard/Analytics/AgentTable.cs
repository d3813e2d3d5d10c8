using System.Runtime.CompilerServices;

namespace ChronoGuard.Analytics;

/// <summary>
/// Per-agent state by the policy's agent index: a plain array read with one volatile load, grown by
/// copy-on-write when a larger index appears (a policy reload that adds agents).
/// </summary>
/// <remarks>
/// Every element is created with the array, never later: filling a null slot in place could race with
/// a concurrent grow copying the array, and updates written to the orphaned instance would be lost.
/// Elements are never replaced, so copying references into the larger array is safe.
/// </remarks>
internal sealed class AgentTable<T>
    where T : class
{
    private readonly Func<T> _create;
    private T[] _items;

    public AgentTable(int capacity, Func<T> create)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(capacity);
        ArgumentNullException.ThrowIfNull(create);
        _create = create;
        _items = new T[capacity];
        for (var i = 0; i < capacity; i++)
        {
            _items[i] = create();
        }
    }

    public int Count => Volatile.Read(ref _items).Length;

    /// <summary>The agent's state, growing the table if the index is new (a negative index is a caller bug and throws).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public T Get(int index)
    {
        var items = Volatile.Read(ref _items);
        return (uint)index < (uint)items.Length ? items[index] : Grow(index);
    }

    /// <summary>The agent's state, or null for an index never seen: for readers, which should not grow the table.</summary>
    public T? Find(int index)
    {
        var items = Volatile.Read(ref _items);
        return (uint)index < (uint)items.Length ? items[index] : null;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private T Grow(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        while (true)
        {
            var items = Volatile.Read(ref _items);
            if (index < items.Length)
            {
                return items[index];
            }

            var grown = new T[index + 1];
            items.CopyTo(grown, 0);
            for (var i = items.Length; i < grown.Length; i++)
            {
                grown[i] = _create();
            }

            if (Interlocked.CompareExchange(ref _items, grown, items) == items)
            {
                return grown[index];
            }
        }
    }
}
