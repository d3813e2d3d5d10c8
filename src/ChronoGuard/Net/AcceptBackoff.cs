namespace ChronoGuard.Net;

/// <summary>
/// The wait between failed accepts: 5 ms, doubling to 1 s, back to the start after a success. An
/// accept error (EMFILE, ENFILE, ENOBUFS) leaves the connection queued, so retrying at once only burns
/// a core until the cause goes away; a bound keeps recovery within a second of it. Under a shortage
/// accepts alternate between success and failure, so bursts come by the hundred: only the first burst of
/// an episode (no failure for <see cref="EpisodeGapMs"/> before it) is to be logged.
/// </summary>
internal struct AcceptBackoff
{
    public const long EpisodeGapMs = 10_000;

    public static readonly TimeSpan First = TimeSpan.FromMilliseconds(5);
    public static readonly TimeSpan Max = TimeSpan.FromSeconds(1);

    private TimeSpan _next;
    private long _lastFailureMs;
    private bool _anyFailure;
    private bool _loggedBurst;

    /// <summary>Failures since the last success (the current burst).</summary>
    public int Failures { get; private set; }

    /// <summary>Records a failure at <paramref name="nowMs"/> (monotonic); returns the delay before the next attempt.</summary>
    /// <param name="episodeStarted">True for the first failure of an episode: the one to log.</param>
    public TimeSpan Fail(long nowMs, out bool episodeStarted)
    {
        var burstStarted = Failures == 0;
        episodeStarted = burstStarted && (!_anyFailure || nowMs - _lastFailureMs > EpisodeGapMs);
        if (burstStarted)
        {
            _loggedBurst = episodeStarted;
        }

        _anyFailure = true;
        _lastFailureMs = nowMs;
        Failures++;
        var delay = burstStarted ? First : _next;
        _next = delay * 2 < Max ? delay * 2 : Max;
        return delay;
    }

    /// <summary>Records a success; returns the failures of the burst it ends when that burst was logged (else 0).</summary>
    public int Succeed()
    {
        var ended = _loggedBurst ? Failures : 0;
        Failures = 0;
        _loggedBurst = false;
        return ended;
    }
}
