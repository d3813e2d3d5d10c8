using Microsoft.Extensions.Configuration;

namespace ChronoGuard.Sidecar.Hosting;

/// <summary>See <see cref="FixedConfigurationSource"/>; <see cref="Origin"/> names the layer in error lines.</summary>
internal sealed class FixedConfigurationProvider(string origin, IDictionary<string, string?> data) : ConfigurationProvider
{
    public const string Defaults = "embedded defaults";
    public const string Flags = "command line";

    public string Origin { get; } = origin;

    public override void Load() => Data = new Dictionary<string, string?>(data, StringComparer.OrdinalIgnoreCase);
}
