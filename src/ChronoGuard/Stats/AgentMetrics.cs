using ChronoGuard.Policy;

namespace ChronoGuard.Stats;

/// <summary>
/// One agent's counters, kept in its <see cref="AgentRuntime"/> so they survive policy reloads
/// (Prometheus counters must only go up while the process lives).
/// </summary>
internal sealed class AgentMetrics
{
    private readonly long[] _decisions = new long[DecisionNames.Count];

    public void Count(Decision decision) => Interlocked.Increment(ref _decisions[(int)decision]);

    public long Decisions(Decision decision) => Volatile.Read(ref _decisions[(int)decision]);
}
