using System.Collections.Concurrent;

namespace ChronoGuard.Proxy;

/// <summary>
/// Idle TLS upstreams of inspected tunnels (SPEC §7), kept when a tunnel ends for the same agent's next
/// tunnel to the same host and port: a new inspected tunnel then costs one TLS handshake (the client's)
/// instead of two. Keyed by agent, so one agent's connection never carries another's requests; a
/// taken upstream is still judged again by the guard under the taking request's policy
/// (<see cref="RequestScope.MayReuse"/> in the forwarder) like any kept upstream. Bounded in count per
/// key and in total (a full pool closes what is returned), and an upstream idle past
/// <see cref="MaxIdleMs"/> is closed rather than reused (origins close idle connections on their own
/// schedule; a request without a body that meets one closed is retried once on a fresh dial).
/// </summary>
internal sealed class UpstreamPool : IDisposable
{
    /// <summary>
    /// As many as an agent's tunnels to one host have in flight at once: each new tunnel takes one and gives
    /// it back at its end, so a bound below that concurrency closes the surplus on return and the next
    /// tunnels dial and handshake again (at 8, with 32 tunnels in flight, about one new tunnel in eight
    /// paid a TCP connect, a client TLS handshake and a chain build). <see cref="MaxTotal"/> still bounds memory.
    /// </summary>
    public const int MaxPerKey = 64;

    public const int MaxTotal = 256;

    /// <summary>Below the idle timeout of most origins (nginx 75 s, Go 90 s, Kestrel 130 s).</summary>
    public const long MaxIdleMs = 30_000;

    private readonly ConcurrentDictionary<Key, ConcurrentQueue<Entry>> _idle = new(KeyComparer.Instance);
    private readonly Func<long> _now;
    private int _count;
    private int _disposed;

    public UpstreamPool(Func<long> nowMs)
    {
        _now = nowMs;
    }

    /// <summary>How many idle upstreams the pool holds.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>An idle upstream for this agent, host and port, or null.</summary>
    public Upstream? TryTake(string agent, string host, int port)
    {
        if (!_idle.TryGetValue(new Key(agent, host, port), out var queue))
        {
            return null;
        }

        var now = _now();
        while (queue.TryDequeue(out var entry))
        {
            Interlocked.Decrement(ref _count);
            // A pooled upstream the origin closed meanwhile (FIN, reset, TLS close_notify) is left here:
            // a request with a body could not be retried on a fresh dial.
            if (now - entry.ParkedMs <= MaxIdleMs && entry.Upstream.TryPark() && entry.Upstream.Transport.IsQuiet())
            {
                return entry.Upstream;
            }

            entry.Upstream.Dispose();
        }

        return null;
    }

    /// <summary>Keeps an idle upstream (clean: <see cref="Upstream.TryPark"/> passed) for the agent's next tunnel; closes it when the pool is full.</summary>
    public void Return(string agent, Upstream upstream)
    {
        var queue = _idle.GetOrAdd(new Key(agent, upstream.Host, upstream.Port), static _ => new ConcurrentQueue<Entry>());
        if (Volatile.Read(ref _disposed) != 0 || queue.Count >= MaxPerKey)
        {
            upstream.Dispose();
            return;
        }

        if (Interlocked.Increment(ref _count) > MaxTotal)
        {
            Interlocked.Decrement(ref _count);
            upstream.Dispose();
            return;
        }

        queue.Enqueue(new Entry(upstream, _now()));
        if (Volatile.Read(ref _disposed) != 0)
        {
            // Disposed meanwhile: what it did not see, this closes.
            Drain(queue, long.MaxValue);
        }
    }

    /// <summary>Closes upstreams idle past <see cref="MaxIdleMs"/> (the server's heartbeat calls this).</summary>
    public void Sweep()
    {
        if (Volatile.Read(ref _count) == 0)
        {
            return;
        }

        var oldest = _now() - MaxIdleMs;
        foreach (var pair in _idle)
        {
            Drain(pair.Value, oldest);
        }
    }

    /// <summary>Dequeues and closes entries parked before <paramref name="parkedBefore"/>, from the oldest, until a newer one.</summary>
    private void Drain(ConcurrentQueue<Entry> queue, long parkedBefore)
    {
        while (queue.TryPeek(out var first) && first.ParkedMs < parkedBefore)
        {
            if (!queue.TryDequeue(out var taken))
            {
                return;
            }

            Interlocked.Decrement(ref _count);
            if (taken.ParkedMs < parkedBefore)
            {
                taken.Upstream.Dispose();
            }
            else
            {
                // Another thread took the one we looked at: this newer one goes back (at the end).
                Interlocked.Increment(ref _count);
                queue.Enqueue(taken);
                return;
            }
        }
    }

    public void Dispose()
    {
        Interlocked.Exchange(ref _disposed, 1);
        foreach (var pair in _idle)
        {
            Drain(pair.Value, long.MaxValue);
        }
    }

    private readonly record struct Entry(Upstream Upstream, long ParkedMs);

    private readonly record struct Key(string Agent, string Host, int Port);

    /// <summary>Hosts compare as DNS does (case-insensitively); agent ids exactly.</summary>
    private sealed class KeyComparer : IEqualityComparer<Key>
    {
        public static readonly KeyComparer Instance = new();

        public bool Equals(Key x, Key y) =>
            x.Port == y.Port && string.Equals(x.Agent, y.Agent, StringComparison.Ordinal) && string.Equals(x.Host, y.Host, StringComparison.OrdinalIgnoreCase);

        public int GetHashCode(Key key) =>
            HashCode.Combine(key.Port, StringComparer.Ordinal.GetHashCode(key.Agent), StringComparer.OrdinalIgnoreCase.GetHashCode(key.Host));
    }
}
