namespace ChronoGuard.Sidecar.Hosting;

/// <summary>The <c>Policy</c> configuration section; no path means observe mode.</summary>
internal sealed class PolicySection
{
    public string? Path { get; set; }

    public bool Watch { get; set; } = true;
}
