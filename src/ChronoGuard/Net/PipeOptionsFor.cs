using System.IO.Pipelines;

namespace ChronoGuard.Net;

internal static class PipeOptionsFor
{
    // Zero-byte reads: a quiet connection waits for readability without holding a pooled buffer, which
    // is what keeps 10,000 idle tunnels cheap. 32 KiB per read once data flows.
    public static readonly StreamPipeReaderOptions Reader = new(
        pool: null, bufferSize: 32 * 1024, minimumReadSize: 4 * 1024, leaveOpen: true, useZeroByteReads: true);

    // An upstream's pipe reads only while a response is due (a parked upstream has no read pending), so
    // a zero-byte read there saves no memory and costs a syscall whenever the response is already in:
    // one 1-byte MSG_PEEK per forwarded request under load (perf/tunnel-ab forward … trace).
    public static readonly StreamPipeReaderOptions Upstream = new(
        pool: null, bufferSize: 32 * 1024, minimumReadSize: 4 * 1024, leaveOpen: true, useZeroByteReads: false);
}
