using System.IO.Pipelines;

namespace ChronoGuard.Net;

internal static class PipeOptionsFor
{
    // Zero-byte reads: a quiet connection waits for readability without holding a pooled buffer, which
    // is what keeps 10,000 idle tunnels cheap. 32 KiB per read once data flows.
    public static readonly StreamPipeReaderOptions Reader = new(
        pool: null, bufferSize: 32 * 1024, minimumReadSize: 4 * 1024, leaveOpen: true, useZeroByteReads: true);
}
