using System.Collections.Concurrent;

namespace ChronoGuard.Http;

/// <summary>
/// Request heads are needed only while a head is read and decided; a tunnel then runs for minutes
/// with no use for its ~35 KiB head (buffer plus offset tables). Returning heads here is what keeps an
/// idle tunnel down to its sockets and pipes.
/// </summary>
internal static class HttpHeadPool
{
    private const int MaxPooled = 1024;
    private static readonly ConcurrentQueue<HttpHead> Pool = new();
    private static int _count;

    public static HttpHead Rent(int maxHeadBytes, int maxHeaders)
    {
        while (Pool.TryDequeue(out var head))
        {
            Interlocked.Decrement(ref _count);
            if (head.MaxHeadBytes == maxHeadBytes && head.HeaderNames.Length == maxHeaders)
            {
                head.Reset();
                return head;
            }

            head.Dispose();
        }

        return new HttpHead(maxHeadBytes, maxHeaders);
    }

    public static void Return(HttpHead head)
    {
        if (Interlocked.Increment(ref _count) > MaxPooled)
        {
            Interlocked.Decrement(ref _count);
            head.Dispose();
            return;
        }

        Pool.Enqueue(head);
    }
}
