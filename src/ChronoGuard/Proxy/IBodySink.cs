using System.Buffers;

namespace ChronoGuard.Proxy;

/// <summary>Where <see cref="BodyCopier"/> puts a body's bytes: towards the upstream or the client, each accounted by its side.</summary>
internal interface IBodySink
{
    /// <summary>Sends every byte; false when the bytes may not be sent (a spent egress budget). IO failures throw.</summary>
    ValueTask<bool> SendAsync(ReadOnlySequence<byte> data);
}
