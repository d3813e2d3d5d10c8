using System.Collections.Concurrent;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace ChronoGuard.Inspection;

/// <summary>
/// Leaves for inspected tunnels, minted per host by the CA and cached (SPEC §7). A hit is one dictionary
/// read, no lock and no allocation. A miss mints once however many handshakes ask for the host at the
/// same moment. The cache holds at most <c>capacity</c> hosts (plus those being inserted at this
/// moment): past it, a CLOCK sweep evicts a host not asked for since the last sweep, so a stream of new
/// names cannot grow memory without bound while the hosts in use stay. Every leaf carries the same
/// P-256 key, made at start and never written anywhere: a key per leaf would protect nothing the CA key
/// beside it in this process does not already hold, and would cost a key generation per first mint.
/// </summary>
internal sealed class LeafCertificates
{
    private readonly CertificateAuthority _ca;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, Entry> _entries;
    private readonly ConcurrentQueue<Entry> _clock = new();
    private readonly Lock _evicting = new();
    private readonly ECDsa _leafKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private int _count;
    private long _minted;

    public LeafCertificates(CertificateAuthority ca, int capacity, TimeProvider time)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _ca = ca;
        _time = time;
        Capacity = capacity;
        _entries = new ConcurrentDictionary<string, Entry>(StringComparer.OrdinalIgnoreCase);
    }

    public int Capacity { get; }

    /// <summary>The CA that signs the leaves.</summary>
    public CertificateAuthority Authority => _ca;

    /// <summary>Hosts cached now (minted or being minted).</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>Leaves minted since start (a cache hit mints nothing).</summary>
    public long Minted => Interlocked.Read(ref _minted);

    /// <summary>The certificate context (leaf + CA chain) an <see cref="SslStream"/> server handshake for <paramref name="host"/> presents.</summary>
    /// <exception cref="InspectionConfigException">The CA has expired (its one-line message says so); nothing can be served.</exception>
    public SslStreamCertificateContext For(string host)
    {
        ArgumentException.ThrowIfNullOrEmpty(host);
        while (true)
        {
            if (_entries.TryGetValue(host, out var entry))
            {
                if (!entry.Used)
                {
                    // Written only when clear: handshakes on every core for one hot host do not bounce its cache line.
                    entry.Used = true;
                }

                if (entry.Context is { } ready && _time.GetUtcNow().UtcTicks < Volatile.Read(ref entry.RenewAtTicks))
                {
                    return ready;
                }

                return Mint(entry);
            }

            var created = new Entry(host);
            if (_entries.TryAdd(host, created))
            {
                Interlocked.Increment(ref _count);
                _clock.Enqueue(created);
                if (Volatile.Read(ref _count) > Capacity)
                {
                    Evict();
                }

                return Mint(created);
            }
        }
    }

    /// <summary>
    /// Mints <paramref name="entry"/>'s leaf, or a fresh one when it nears its end; concurrent callers
    /// wait for that one mint and share it.
    /// </summary>
    private SslStreamCertificateContext Mint(Entry entry)
    {
        lock (entry)
        {
            var now = _time.GetUtcNow();
            if (entry.Context is { } raced && now.UtcTicks < Volatile.Read(ref entry.RenewAtTicks))
            {
                return raced;
            }

            // A mint that throws leaves the entry without a leaf (it stays in the queue and the count, so the
            // bound holds), and the next handshake for the host tries again.
            var leaf = _ca.Issue(entry.Host, now, _leafKey);
            var context = SslStreamCertificateContext.Create(leaf, [_ca.Certificate], offline: true);
            Interlocked.Increment(ref _minted);
            // Context before its deadline: a reader that sees the new deadline also sees the new leaf.
            entry.Context = context;
            // A leaf cut short by the CA's own end cannot be renewed into a longer one: it serves until then.
            var notAfter = leaf.NotAfter.ToUniversalTime();
            var renewAt = notAfter >= _ca.Certificate.NotAfter.ToUniversalTime() ? notAfter : notAfter - CertificateAuthority.RenewBefore;
            Volatile.Write(ref entry.RenewAtTicks, renewAt.Ticks);
            return context;
        }
    }

    /// <summary>
    /// CLOCK: the queue holds every cached entry in insertion order; one used since it was last passed
    /// gets a second chance at the back, one unused leaves. Second chances are limited to one per entry
    /// queued when the sweep began, so the sweep ends even when every host is in use.
    /// </summary>
    private void Evict()
    {
        lock (_evicting)
        {
            var chances = _clock.Count;
            while (Volatile.Read(ref _count) > Capacity && _clock.TryDequeue(out var entry))
            {
                if (entry.Used && chances-- > 0)
                {
                    entry.Used = false;
                    _clock.Enqueue(entry);
                    continue;
                }

                // Only the sweep removes, and the queue holds exactly the cached entries: this always succeeds.
                if (_entries.TryRemove(new KeyValuePair<string, Entry>(entry.Host, entry)))
                {
                    Interlocked.Decrement(ref _count);
                }
            }
        }
    }

    private sealed class Entry(string host)
    {
        public string Host { get; } = host;

        public volatile SslStreamCertificateContext? Context;

        /// <summary>UTC ticks from which <see cref="Context"/> is replaced (read and written with Volatile).</summary>
        public long RenewAtTicks;

        /// <summary>
        /// Set on every hit, cleared by the sweep: CLOCK's reference bit. A new host starts without it, so a
        /// sweep made by a stream of new names takes the oldest unused host, never one in use.
        /// </summary>
        public volatile bool Used;
    }
}
