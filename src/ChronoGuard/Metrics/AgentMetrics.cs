using System.Runtime.CompilerServices;
using ChronoGuard.Policy;

namespace ChronoGuard.Metrics;

/// <summary>
/// One agent's decision counters by decision and bounded reason (<see cref="LabelValues"/>), kept in
/// <see cref="ProxyMetrics"/> by the agent's index, which reloads keep, so they survive policy reloads
/// (Prometheus counters must only go up while the process lives). One Interlocked increment per
/// decision, no lock, no allocation.
/// </summary>
internal sealed class AgentMetrics
{
    // One 64-byte cache line per reason holds its six decision counters, so two reasons counted at once
    // on different cores never share a line. The array is pinned so the first row can be aligned to a
    // line once; ~75 reasons make ~4.9 KiB per agent.
    private const int Stride = 8;
    private const int LineBytes = 64;

    private readonly long[] _counts;
    private readonly int _origin;

    public AgentMetrics(LabelValues reasons)
    {
        Reasons = reasons;
        _counts = GC.AllocateArray<long>((reasons.Count * Stride) + Stride, pinned: true);
        _origin = Misalignment(_counts);
    }

    /// <summary>The reason label's values, which index <see cref="Decisions(Decision, int)"/>.</summary>
    public LabelValues Reasons { get; }

    /// <summary>Counts one decision under its reason (anything outside the fixed table counts as <c>other</c>).</summary>
    public void Count(Decision decision, string? reason) =>
        Interlocked.Increment(ref _counts[Slot(decision, Reasons.IndexOf(reason))]);

    /// <summary>All decisions of this kind, whatever their reason.</summary>
    public long Decisions(Decision decision)
    {
        var total = 0L;
        for (var r = 0; r < Reasons.Count; r++)
        {
            total += Volatile.Read(ref _counts[Slot(decision, r)]);
        }

        return total;
    }

    /// <summary>Decisions of this kind with the reason at <paramref name="reasonIndex"/> in <see cref="Reasons"/>.</summary>
    public long Decisions(Decision decision, int reasonIndex) => Volatile.Read(ref _counts[Slot(decision, reasonIndex)]);

    private int Slot(Decision decision, int reasonIndex) => _origin + (reasonIndex * Stride) + (int)decision;

    private static unsafe int Misalignment(long[] pinned)
    {
        var address = (nint)Unsafe.AsPointer(ref pinned[0]);
        var bytes = (int)((LineBytes - (address % LineBytes)) % LineBytes);
        return bytes / sizeof(long);
    }
}
