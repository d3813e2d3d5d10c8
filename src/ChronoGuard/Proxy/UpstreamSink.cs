using System.Buffers;

namespace ChronoGuard.Proxy;

/// <summary>A body going up: through the scope's one upstream send, which charges egress before each write.</summary>
internal readonly struct UpstreamSink(RequestScope scope) : IBodySink
{
    public ValueTask<bool> SendAsync(ReadOnlySequence<byte> data) => scope.SendUpstreamAsync(data);
}
