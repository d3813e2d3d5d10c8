using System.Net;
using System.Net.Sockets;

namespace ChronoGuard.Policy;

/// <summary>
/// Which destinations may be dialed: allowed ports, and no private, loopback, link-local, CGNAT,
/// multicast or cloud-metadata address unless an <c>allowedCidrs</c> entry names it. Judged on the
/// resolved address that is then dialed, so a name that rebinds to 169.254.169.254 is caught; an
/// IPv4-mapped or NAT64 IPv6 address is judged by the IPv4 address inside it.
/// </summary>
internal sealed class NetworkGuard
{
    private static readonly IPNetwork[] PrivateV4 =
    [
        IPNetwork.Parse("0.0.0.0/8"),
        IPNetwork.Parse("10.0.0.0/8"),
        IPNetwork.Parse("100.64.0.0/10"),
        IPNetwork.Parse("127.0.0.0/8"),
        IPNetwork.Parse("169.254.0.0/16"),
        IPNetwork.Parse("172.16.0.0/12"),
        IPNetwork.Parse("192.0.0.0/24"),
        IPNetwork.Parse("192.0.2.0/24"),
        IPNetwork.Parse("192.168.0.0/16"),
        IPNetwork.Parse("198.18.0.0/15"),
        IPNetwork.Parse("198.51.100.0/24"),
        IPNetwork.Parse("203.0.113.0/24"),
        IPNetwork.Parse("224.0.0.0/3"),
    ];

    private static readonly IPNetwork[] PrivateV6 =
    [
        IPNetwork.Parse("::/128"),
        IPNetwork.Parse("::1/128"),
        IPNetwork.Parse("fc00::/7"),
        IPNetwork.Parse("fe80::/10"),
        IPNetwork.Parse("fec0::/10"),
        IPNetwork.Parse("ff00::/8"),
        IPNetwork.Parse("2001:db8::/32"),
    ];

    // Metadata endpoints stay blocked even with allowPrivateDestinations: reaching them from an agent
    // is credential theft, never a use case. AWS, GCP, Azure and Alibaba use 169.254.169.254 or
    // 100.100.100.200; AWS's IPv6 endpoint is fd00:ec2::254.
    private static readonly IPNetwork[] Metadata =
    [
        IPNetwork.Parse("169.254.169.254/32"),
        IPNetwork.Parse("169.254.170.2/32"),
        IPNetwork.Parse("100.100.100.200/32"),
        IPNetwork.Parse("fd00:ec2::254/128"),
    ];

    private static readonly IPNetwork Nat64 = IPNetwork.Parse("64:ff9b::/96");

    private readonly bool[] _ports;
    private readonly bool _anyPort;

    public NetworkGuard(bool allowPrivate, IReadOnlyList<IPNetwork> allowedCidrs, IReadOnlyList<int>? allowedPorts, bool requireSniMatch)
    {
        AllowPrivate = allowPrivate;
        AllowedCidrs = [.. allowedCidrs];
        RequireSniMatch = requireSniMatch;
        _ports = new bool[65536];
        _anyPort = allowedPorts is null;
        foreach (var p in allowedPorts ?? [])
        {
            _ports[p] = true;
        }
    }

    /// <summary>Everything allowed: observe mode with no policy file.</summary>
    public static NetworkGuard Open { get; } = new(allowPrivate: true, [], allowedPorts: null, requireSniMatch: false);

    public bool AllowPrivate { get; }

    public IPNetwork[] AllowedCidrs { get; }

    public bool RequireSniMatch { get; }

    public bool PortAllowed(int port) => _anyPort || ((uint)port < 65536 && _ports[port]);

    /// <summary>Null when <paramref name="address"/> may be dialed, else the refusal reason.</summary>
    public string? Check(IPAddress address)
    {
        foreach (var cidr in AllowedCidrs)
        {
            if (cidr.Contains(address))
            {
                return null;
            }
        }

        var v4 = Embedded(address);
        var subject = v4 ?? address;
        foreach (var m in Metadata)
        {
            if (m.Contains(subject))
            {
                return Reasons.MetadataDestination;
            }
        }

        if (AllowPrivate)
        {
            return null;
        }

        var ranges = subject.AddressFamily == AddressFamily.InterNetwork ? PrivateV4 : PrivateV6;
        foreach (var range in ranges)
        {
            if (range.Contains(subject))
            {
                return Reasons.PrivateDestination;
            }
        }

        return null;
    }

    /// <summary>The IPv4 address inside an IPv4-mapped or NAT64 IPv6 address, or null.</summary>
    private static IPAddress? Embedded(IPAddress address)
    {
        if (address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return null;
        }

        if (address.IsIPv4MappedToIPv6)
        {
            return address.MapToIPv4();
        }

        if (Nat64.Contains(address))
        {
            Span<byte> bytes = stackalloc byte[16];
            address.TryWriteBytes(bytes, out _);
            return new IPAddress(bytes[12..]);
        }

        return null;
    }
}
