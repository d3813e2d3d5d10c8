namespace ChronoGuard.Sidecar.Hosting;

/// <summary>The <c>Stats</c> configuration section.</summary>
internal sealed class StatsSection
{
    public string Listen { get; set; } = "127.0.0.1:9477";
}
