namespace ChronoGuard.Proxy;

/// <summary>
/// The wait between failed accepts: 5 ms, doubling to 1 s, back to the start after a success. An
/// accept error (EMFILE, ENFILE, ENOBUFS) leaves the connection queued, so retrying at once only burns
/// a core until the cause goes away; a bound keeps recovery within a second of it.
/// </summary>
internal struct AcceptBackoff
{
    public static readonly TimeSpan First = TimeSpan.FromMilliseconds(5);
    public static readonly TimeSpan Max = TimeSpan.FromSeconds(1);

    private TimeSpan _next;

    /// <summary>Failures since the last success (the current burst).</summary>
    public int Failures { get; private set; }

    /// <summary>Records a failure; returns the delay before the next attempt.</summary>
    /// <param name="burstStarted">True for the first failure after a success: the one to log.</param>
    public TimeSpan Fail(out bool burstStarted)
    {
        burstStarted = Failures == 0;
        Failures++;
        var delay = burstStarted ? First : _next;
        _next = delay * 2 < Max ? delay * 2 : Max;
        return delay;
    }

    /// <summary>Records a success; returns the failures of the burst it ends (0 when there was none).</summary>
    public int Succeed()
    {
        var ended = Failures;
        Failures = 0;
        return ended;
    }
}
