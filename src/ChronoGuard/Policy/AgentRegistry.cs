using System.Collections.Concurrent;

namespace ChronoGuard.Policy;

/// <summary>Runtime state per agent id, shared by every compiled policy so that reloads carry it over.</summary>
internal sealed class AgentRegistry
{
    private readonly ConcurrentDictionary<string, AgentRuntime> _agents = new(StringComparer.Ordinal);

    public AgentRuntime Get(string id) => _agents.GetOrAdd(id, static i => new AgentRuntime(i));
}
