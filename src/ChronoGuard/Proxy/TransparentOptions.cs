namespace ChronoGuard.Proxy;

/// <summary>The <c>Transparent</c> configuration section (SPEC §10); the listener itself comes with transparent capture.</summary>
internal sealed class TransparentOptions
{
    /// <summary>The agent redirected connections belong to; also the DNS guard's when <c>Dns:Agent</c> is empty.</summary>
    public string Agent { get; set; } = string.Empty;
}
