using ChronoGuard.Approvals;
using ChronoGuard.Inspection;
using Microsoft.Extensions.Logging;

namespace ChronoGuard.Proxy;

/// <summary>What every connection shares: options copied once at start, resolver, clock, logger, gate.</summary>
internal sealed class ProxyContext
{
    private readonly long _timestampsPerMs;

    public ProxyContext(ProxyOptions options, IDnsResolver resolver, TimeProvider time, ILogger logger, IRequestGate gate)
    {
        Options = options;
        Resolver = resolver;
        Time = time;
        Logger = logger;
        Gate = gate;
        Descriptors = new FileDescriptors(logger, time);
        _timestampsPerMs = Math.Max(1, time.TimestampFrequency / 1000);
        Upstreams = new UpstreamPool(NowMs);
    }

    public ProxyOptions Options { get; }

    public IDnsResolver Resolver { get; }

    /// <summary>Connection phases, timeouts and deadlines all read this clock, so tests can drive them.</summary>
    public TimeProvider Time { get; }

    public ILogger Logger { get; }

    public IRequestGate Gate { get; }

    /// <summary>Leaves and upstream trust for inspected tunnels (SPEC §7); null when <c>Inspection</c> is not configured.</summary>
    public InspectionContext? Inspection { get; init; }

    /// <summary>Requests held for approval (SPEC §9, <c>ask</c>); null when the admin API is off (then no policy may ask).</summary>
    public PendingApprovals? Approvals { get; init; }

    /// <summary>The spare descriptor and the once-per-episode report of running out.</summary>
    public FileDescriptors Descriptors { get; }

    /// <summary>Idle TLS upstreams of inspected tunnels, kept for the agent's next tunnel to the same host (SPEC §7).</summary>
    public UpstreamPool Upstreams { get; }

    /// <summary>Monotonic milliseconds from <see cref="Time"/> (divided, not multiplied: no overflow).</summary>
    public long NowMs() => Time.GetTimestamp() / _timestampsPerMs;
}
