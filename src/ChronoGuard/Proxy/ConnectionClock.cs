namespace ChronoGuard.Proxy;

/// <summary>
/// A connection's phase and the times its timeouts are measured from, read by the heartbeat thread
/// while the connection's own task writes them. Each field is one volatile word; the heartbeat may
/// see a phase with the previous phase's start, which only delays a timeout by one beat.
/// </summary>
internal sealed class ConnectionClock(ProxyContext context)
{
    private int _phase;
    private long _phaseStart;
    private long _lastActivity;
    private int _timeout;

    public ConnectionPhase Phase => (ConnectionPhase)Volatile.Read(ref _phase);

    /// <summary>The first timeout that fired, or None.</summary>
    public TimeoutKind Fired => (TimeoutKind)Volatile.Read(ref _timeout);

    public void Enter(ConnectionPhase phase)
    {
        // Start before phase: a heartbeat that sees the new phase sees at least this start.
        Volatile.Write(ref _phaseStart, context.NowMs());
        Volatile.Write(ref _phase, (int)phase);
    }

    public void Touch() => Volatile.Write(ref _lastActivity, context.NowMs());

    /// <summary>Records the first timeout; false when another already fired.</summary>
    public bool TryFire(TimeoutKind kind) => Interlocked.CompareExchange(ref _timeout, (int)kind, 0) == 0;

    /// <summary>The timeout due now in the current phase, or None.</summary>
    public TimeoutKind Due(long now, bool draining, bool headEmpty, ProxyOptions options, int lingerMs)
    {
        var since = now - Volatile.Read(ref _phaseStart);
        var quiet = now - Math.Max(Volatile.Read(ref _lastActivity), Volatile.Read(ref _phaseStart));
        return Phase switch
        {
            ConnectionPhase.ReadingHead when since > options.HeaderTimeoutMs => TimeoutKind.Header,
            ConnectionPhase.ReadingHead when draining && headEmpty => TimeoutKind.Drain,
            ConnectionPhase.Idle when draining => TimeoutKind.Drain,
            ConnectionPhase.Idle when since > options.IdleTimeoutMs => TimeoutKind.Idle,
            ConnectionPhase.Lingering when since > lingerMs => TimeoutKind.Linger,
            ConnectionPhase.ReadingBody when quiet > options.BodyTimeoutMs => TimeoutKind.Body,
            ConnectionPhase.Busy or ConnectionPhase.Tunnel or ConnectionPhase.ReadingBody when quiet > options.IdleTimeoutMs => TimeoutKind.Idle,
            _ => TimeoutKind.None,
        };
    }
}
