using System.Buffers;

namespace ChronoGuard.Proxy;

/// <summary>
/// The body of a request refused inside an inspected tunnel: read and dropped (it goes nowhere, so it
/// is neither egress nor counted), so the client's connection can carry its next request.
/// </summary>
internal readonly struct DiscardSink : IBodySink
{
    public ValueTask<bool> SendAsync(ReadOnlySequence<byte> data) => ValueTask.FromResult(true);
}
