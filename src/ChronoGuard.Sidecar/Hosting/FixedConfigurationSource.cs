using Microsoft.Extensions.Configuration;

namespace ChronoGuard.Sidecar.Hosting;

/// <summary>Our in-memory layers (embedded defaults, flags), told apart from the host's own keys by type.</summary>
internal sealed class FixedConfigurationSource(string origin, IDictionary<string, string?> data) : IConfigurationSource
{
    public IConfigurationProvider Build(IConfigurationBuilder builder) => new FixedConfigurationProvider(origin, data);
}
