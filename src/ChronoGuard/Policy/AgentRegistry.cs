using System.Collections.Concurrent;

namespace ChronoGuard.Policy;

/// <summary>Runtime state per agent id, shared by every compiled policy so that reloads carry it over.</summary>
internal sealed class AgentRegistry
{
    private readonly ConcurrentDictionary<string, AgentRuntime> _agents = new(StringComparer.Ordinal);
    private int _lastIndex;

    /// <summary>The agent's runtime, created with the next stable index (1, 2, …; 0 is "no agent") on first use.</summary>
    public AgentRuntime Get(string id) => _agents.GetOrAdd(id, static (i, self) => new AgentRuntime(i, Interlocked.Increment(ref self._lastIndex)), this);
}
