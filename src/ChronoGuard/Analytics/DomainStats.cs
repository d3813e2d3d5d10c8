namespace ChronoGuard.Analytics;

/// <summary>
/// Per-domain request counts (<see cref="CountMinSketch"/>) and the heaviest domains (<see cref="TopK"/>)
/// behind one call per request. Lock-free; allocates only when a domain enters the candidate set.
/// </summary>
internal sealed class DomainStats
{
    public DomainStats(int depth = 4, int width = 2048, int k = 20, int candidates = 64)
    {
        Sketch = new CountMinSketch(depth, width);
        Top = new TopK(Sketch, k, candidates);
    }

    public CountMinSketch Sketch { get; }

    public TopK Top { get; }

    /// <summary>
    /// Counts one request to <paramref name="asciiLowerDomain"/> (lowercase ASCII, no trailing dot) and
    /// returns its <see cref="CountMinSketch.Hash"/>, so that the distinct-domain and new-domain
    /// sketches can take the same hash instead of hashing the name again.
    /// </summary>
    public ulong Record(ReadOnlySpan<byte> asciiLowerDomain)
    {
        var hash = CountMinSketch.Hash(asciiLowerDomain);
        Record(asciiLowerDomain, hash);
        return hash;
    }

    /// <summary>Counts one request to a domain whose <see cref="CountMinSketch.Hash"/> the caller already has.</summary>
    public void Record(ReadOnlySpan<byte> asciiLowerDomain, ulong hash) => Top.Offer(hash, asciiLowerDomain, Sketch.Add(hash));

    public long Estimate(ReadOnlySpan<byte> asciiLowerDomain) => Sketch.Estimate(CountMinSketch.Hash(asciiLowerDomain));

    public HeavyHitter[] Snapshot() => Top.Snapshot();
}
