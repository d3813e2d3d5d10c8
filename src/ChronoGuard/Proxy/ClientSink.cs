using System.Buffers;

namespace ChronoGuard.Proxy;

/// <summary>A body coming down: through the scope's one client send, which counts the bytes.</summary>
internal readonly struct ClientSink(RequestScope scope) : IBodySink
{
    public ValueTask<bool> SendAsync(ReadOnlySequence<byte> data) => scope.SendDownstreamAsync(data);
}
