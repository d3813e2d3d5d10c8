using System.Net;
using ChronoGuard.Net;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Resolution;

/// <summary>Dns:Upstream's default: the first nameserver of a resolv.conf (a file the test writes, never the machine's).</summary>
public sealed class ResolvConfTests
{
    [Theory]
    [InlineData("# comment\nsearch example.com\nnameserver 10.0.0.53\nnameserver 10.0.0.54\n", "10.0.0.53:53")]
    [InlineData("nameserver\tfd00::53 # inline comment\n", "[fd00::53]:53")]
    [InlineData("nameservers 1.1.1.1\nnameserver not-an-address\nnameserver 192.0.2.1\n", "192.0.2.1:53")]
    [InlineData("options ndots:5\n", null)]
    public void The_first_nameserver_line_with_an_address_is_the_default_upstream(string text, string? expected)
    {
        using var dir = new TempDir();
        var file = dir.File("resolv.conf");
        File.WriteAllText(file, text);
        Assert.Equal(expected is null ? null : IPEndPoint.Parse(expected), ResolvConf.FirstNameserver(file));
        Assert.Null(ResolvConf.FirstNameserver(dir.File("missing")));
    }
}
