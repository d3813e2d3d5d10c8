using Microsoft.Extensions.Logging;

namespace ChronoGuard.Proxy;

/// <summary>What every connection shares: options copied once at start, resolver, clock, logger, gate.</summary>
internal sealed class ProxyContext
{
    public ProxyContext(ProxyOptions options, IDnsResolver resolver, TimeProvider time, ILogger logger, RequestGate gate)
    {
        Options = options;
        Resolver = resolver;
        Time = time;
        Logger = logger;
        Hooks = gate;
        Connector = new UpstreamConnector(resolver, options.ConnectTimeoutMs);
    }

    public ProxyOptions Options { get; }

    public IDnsResolver Resolver { get; }

    public UpstreamConnector Connector { get; }

    public TimeProvider Time { get; }

    public ILogger Logger { get; }

    public RequestGate Hooks { get; }
}
