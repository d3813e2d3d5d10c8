using System.Collections.Concurrent;

namespace ChronoGuard.Http;

/// <summary>
/// Heads are needed only while a message head is read, decided and relayed; between requests a
/// keep-alive connection and for minutes a tunnel have no use for their ~35 KiB (buffer plus offset
/// tables). Returning heads here is what keeps an idle connection down to its sockets and pipes.
/// One pool per head shape (request heads, response heads), so they never evict each other.
/// </summary>
internal sealed class HttpHeadPool
{
    private const int MaxPooled = 1024;
    private readonly ConcurrentQueue<HttpHead> _pool = new();
    private int _count;

    public HttpHead Rent(int maxHeadBytes, int maxHeaders)
    {
        while (_pool.TryDequeue(out var head))
        {
            Interlocked.Decrement(ref _count);
            if (head.MaxHeadBytes == maxHeadBytes && head.HeaderNames.Length == maxHeaders)
            {
                head.Reset();
                return head;
            }

            head.Dispose();
        }

        var fresh = new HttpHead(maxHeadBytes, maxHeaders);
        fresh.Reset();
        return fresh;
    }

    public void Return(HttpHead head)
    {
        if (Interlocked.Increment(ref _count) > MaxPooled)
        {
            Interlocked.Decrement(ref _count);
            head.Dispose();
            return;
        }

        _pool.Enqueue(head);
    }
}
