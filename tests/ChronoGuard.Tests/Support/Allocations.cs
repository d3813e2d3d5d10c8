namespace ChronoGuard.Tests.Support;

/// <summary>Zero-allocation checks that a runtime re-compiling the loop under test cannot fail.</summary>
internal static class Allocations
{
    /// <summary>
    /// Bytes this thread allocated running <paramref name="body"/> <paramref name="iterations"/> times:
    /// the least of three rounds. A round can see the runtime allocate on this thread while it tiers up
    /// or replaces the loop on the stack (OSR); the code under test must show 0 in one of them. The
    /// delegate is made and called once before measuring, so neither it nor first-call work counts.
    /// </summary>
    public static long Least(Action body, int iterations = 1000)
    {
        body();
        var least = long.MaxValue;
        for (var round = 0; round < 3 && least != 0; round++)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            for (var i = 0; i < iterations; i++)
            {
                body();
            }

            least = Math.Min(least, GC.GetAllocatedBytesForCurrentThread() - before);
        }

        return least;
    }
}
