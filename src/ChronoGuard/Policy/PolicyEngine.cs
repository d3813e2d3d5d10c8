namespace ChronoGuard.Policy;

/// <summary>
/// Owns the current <see cref="CompiledPolicy"/>. Reloads compile off the hot path and publish with
/// <see cref="Volatile.Write{T}(ref T, T)"/>; requests read <see cref="Current"/> once. An invalid file
/// leaves the current policy in place.
/// </summary>
internal sealed class PolicyEngine
{
    private readonly Lock _reloadLock = new();
    private CompiledPolicy _current;
    private long _version;
    private long _loadedAtUnixMs;

    public PolicyEngine(string? path, int maxTunnelsPerAgent, TimeProvider time)
    {
        Path = path;
        MaxTunnelsPerAgent = maxTunnelsPerAgent;
        Time = time;
        _current = PolicyCompiler.Observe(Registry, maxTunnelsPerAgent);
        _current.RuntimeGrants = RuntimeGrants;
        _loadedAtUnixMs = time.GetUtcNow().ToUnixTimeMilliseconds();
    }

    public string? Path { get; }

    public int MaxTunnelsPerAgent { get; }

    public TimeProvider Time { get; }

    /// <summary>
    /// Inspection (a CA) is configured (SPEC §7): without it a policy naming <c>inspect</c> or
    /// <c>credentials</c> is a load error, since nothing could terminate TLS for it.
    /// </summary>
    public bool InspectionConfigured { get; init; }

    /// <summary>The admin API is on (SPEC §9): without it a policy that says <c>ask</c> is a load error, since nobody could approve.</summary>
    public bool ApprovalsConfigured { get; init; }

    public AgentRegistry Registry { get; } = new();

    /// <summary>Runtime grants (SPEC §9): every policy this engine publishes consults the same table, so a reload keeps them.</summary>
    public RuntimeGrantTable RuntimeGrants { get; } = new();

    /// <summary>
    /// After the runtime grants changed: moves <see cref="Version"/> so the proxy rechecks open tunnels
    /// (a revoked grant ends the tunnels it let through, as a reload would).
    /// </summary>
    public void GrantsChanged() => Interlocked.Increment(ref _version);

    public CompiledPolicy Current => Volatile.Read(ref _current);

    /// <summary>Incremented on every successful (re)load; the proxy rechecks open tunnels when it moves.</summary>
    public long Version => Volatile.Read(ref _version);

    /// <summary>When <see cref="Current"/> was put in place (the start, or the last successful reload), for chronoguard_policy_last_reload_success_timestamp_seconds.</summary>
    public DateTimeOffset LoadedAt => DateTimeOffset.FromUnixTimeMilliseconds(Volatile.Read(ref _loadedAtUnixMs));

    /// <summary>Loads <see cref="Path"/> (no-op outcome when there is no file: observe mode stays).</summary>
    public PolicyLoadOutcome Reload()
    {
        if (Path is null)
        {
            return new PolicyLoadOutcome(true, null, string.Empty, null);
        }

        // One reload at a time (file watcher and SIGHUP may coincide); requests never take this lock.
        // TryLoad never throws, so a reload can only end in an outcome: the old policy stays unless
        // the new one compiled, and the rejection carries the hash of the very bytes it judged.
        lock (_reloadLock)
        {
            var outcome = PolicyLoader.TryLoad(Path, Registry, MaxTunnelsPerAgent, InspectionConfigured, ApprovalsConfigured);
            if (outcome.Policy is { } compiled)
            {
                compiled.RuntimeGrants = RuntimeGrants;
                Volatile.Write(ref _current, compiled);
                Volatile.Write(ref _loadedAtUnixMs, Time.GetUtcNow().ToUnixTimeMilliseconds());
                Interlocked.Increment(ref _version);
            }

            return outcome;
        }
    }
}
