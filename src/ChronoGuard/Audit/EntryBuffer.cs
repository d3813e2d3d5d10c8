namespace ChronoGuard.Audit;

/// <summary>
/// The writer's copy of entries appended to FASTER and not yet durable, in order, in one growing byte
/// array (no allocation per entry once grown): after a fault they are appended again byte for byte.
/// </summary>
internal sealed class EntryBuffer
{
    private byte[] _bytes = new byte[64 * 1024];
    private readonly List<(long Seq, int Offset, int Length)> _index = new(1024);
    private int _used;

    public void Add(long seq, ReadOnlySpan<byte> entry)
    {
        if (_used + entry.Length > _bytes.Length)
        {
            Array.Resize(ref _bytes, Math.Max(_bytes.Length * 2, _used + entry.Length));
        }

        entry.CopyTo(_bytes.AsSpan(_used));
        _index.Add((seq, _used, entry.Length));
        _used += entry.Length;
    }

    public IEnumerable<(long Seq, ReadOnlyMemory<byte> Bytes)> Entries()
    {
        foreach (var (seq, offset, length) in _index)
        {
            yield return (seq, _bytes.AsMemory(offset, length));
        }
    }

    public void Clear()
    {
        _index.Clear();
        _used = 0;
    }
}
