using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace ChronoGuard.Policy;

/// <summary>
/// Which destinations may be dialed: allowed ports, and no private, loopback, link-local, CGNAT,
/// multicast, reserved, documentation or cloud-metadata address unless an <c>allowedCidrs</c> entry
/// names it. Judged on the resolved address that is then dialed, so a name that rebinds to
/// 169.254.169.254 is caught. An IPv6 address is judged as itself and, for every transition form that
/// carries an IPv4 address (mapped, compatible, NAT64, 6to4, Teredo, ISATAP), by that IPv4 address
/// too: a form that reaches a private IPv4 host is refused like the host.
/// </summary>
internal sealed class NetworkGuard
{
    private static readonly (uint Prefix, int Length)[] PrivateV4 =
    [
        (0x00000000, 8),    // 0.0.0.0/8 "this network"
        (0x0A000000, 8),    // 10.0.0.0/8
        (0x64400000, 10),   // 100.64.0.0/10 CGNAT
        (0x7F000000, 8),    // 127.0.0.0/8 loopback
        (0xA9FE0000, 16),   // 169.254.0.0/16 link-local
        (0xAC100000, 12),   // 172.16.0.0/12
        (0xC0000000, 24),   // 192.0.0.0/24 IETF protocol assignments
        (0xC0000200, 24),   // 192.0.2.0/24 TEST-NET-1
        (0xC0586300, 24),   // 192.88.99.0/24 6to4 relay anycast
        (0xC0A80000, 16),   // 192.168.0.0/16
        (0xC6120000, 15),   // 198.18.0.0/15 benchmarking
        (0xC6336400, 24),   // 198.51.100.0/24 TEST-NET-2
        (0xCB007100, 24),   // 203.0.113.0/24 TEST-NET-3
        (0xE0000000, 3),    // 224.0.0.0/3 multicast, reserved, broadcast
    ];

    private static readonly (UInt128 Prefix, int Length)[] PrivateV6 =
    [
        (V6(0, 0), 128),                       // :: unspecified
        (V6(0, 1), 128),                       // ::1 loopback
        (V6(0x0100_0000_0000_0000, 0), 64),    // 100::/64 discard-only
        (V6(0x2001_0002_0000_0000, 0), 48),    // 2001:2::/48 benchmarking
        (V6(0x2001_0010_0000_0000, 0), 28),    // 2001:10::/28 ORCHID
        (V6(0x2001_0020_0000_0000, 0), 28),    // 2001:20::/28 ORCHIDv2
        (V6(0x2001_0db8_0000_0000, 0), 32),    // 2001:db8::/32 documentation
        (V6(0x3fff_0000_0000_0000, 0), 20),    // 3fff::/20 documentation
        (V6(0x0064_ff9b_0001_0000, 0), 48),    // 64:ff9b:1::/48 local-use NAT64: its mapping is site-defined
        (V6(0x5f00_0000_0000_0000, 0), 16),    // 5f00::/16 SRv6 SIDs
        (V6(0xfc00_0000_0000_0000, 0), 7),     // fc00::/7 unique local
        (V6(0xfe80_0000_0000_0000, 0), 10),    // fe80::/10 link-local
        (V6(0xfec0_0000_0000_0000, 0), 10),    // fec0::/10 site-local (deprecated, still routed by some)
        (V6(0xff00_0000_0000_0000, 0), 8),     // ff00::/8 multicast
    ];

    // Metadata endpoints stay blocked even with allowPrivateDestinations: reaching them from an agent
    // is credential theft, never a use case. AWS, GCP, Azure and Alibaba use 169.254.169.254 or
    // 100.100.100.200; AWS's IPv6 endpoint is fd00:ec2::254.
    private static readonly uint[] MetadataV4 = [0xA9FEA9FE, 0xA9FEAA02, 0x646464C8];
    private static readonly UInt128 MetadataV6 = V6(0xfd00_0ec2_0000_0000, 0x254);

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

    /// <summary>The ports a policy file without <c>network.allowedPorts</c> allows.</summary>
    public static IReadOnlyList<int> DefaultPorts { get; } = [80, 443];

    /// <summary>
    /// The guard of a policy file without a <c>network</c> section, and of a run without a policy file:
    /// observe mode there records what this guard would refuse (SPEC §3), so that the first enforce
    /// policy, with the same defaults, refuses nothing the observe run recorded as allowed.
    /// </summary>
    public static NetworkGuard Default { get; } = new(allowPrivate: false, [], DefaultPorts, requireSniMatch: true);

    public bool AllowPrivate { get; }

    public IPNetwork[] AllowedCidrs { get; }

    public bool RequireSniMatch { get; }

    public bool PortAllowed(int port) => _anyPort || ((uint)port < 65536 && _ports[port]);

    /// <summary>Null when <paramref name="address"/> may be dialed, else the refusal reason.</summary>
    public string? Check(IPAddress address)
    {
        // An IPv4-mapped address is the IPv4 host itself: an allowedCidrs entry for either form admits it.
        var plain = address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
        foreach (var cidr in AllowedCidrs)
        {
            if (cidr.Contains(address) || cidr.Contains(plain))
            {
                return null;
            }
        }

        Span<byte> bytes = stackalloc byte[16];
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            address.TryWriteBytes(bytes, out _);
            return CheckV4(BinaryPrimitives.ReadUInt32BigEndian(bytes), AllowPrivate);
        }

        address.TryWriteBytes(bytes, out _);
        var v6 = BinaryPrimitives.ReadUInt128BigEndian(bytes);
        if (v6 == MetadataV6)
        {
            return Reasons.MetadataDestination;
        }

        // Judge every IPv4 address the transition forms carry; the worst verdict wins.
        Span<uint> embedded = stackalloc uint[2];
        string? verdict = null;
        foreach (var v4 in embedded[..Embedded(v6, embedded)])
        {
            verdict = Worse(verdict, CheckV4(v4, AllowPrivate));
        }

        if (verdict is null && !AllowPrivate && InAny(v6, PrivateV6))
        {
            verdict = Reasons.PrivateDestination;
        }

        return verdict;
    }

    /// <summary>The IPv4 addresses an IPv6 transition form carries (0, 1 or 2 of them).</summary>
    internal static int Embedded(UInt128 a, Span<uint> into)
    {
        var low32 = (uint)a;
        var high96 = a >> 32;
        if (high96 == 0xffff || high96 == 0)
        {
            // ::ffff:a.b.c.d mapped, ::a.b.c.d compatible (:: and ::1 included: 0.0.0.0 and 0.0.0.1 are "this network").
            into[0] = low32;
            return 1;
        }

        if (high96 == (V6(0x0064_ff9b_0000_0000, 0) >> 32))
        {
            into[0] = low32; // NAT64 well-known prefix 64:ff9b::/96
            return 1;
        }

        var top16 = (ushort)(a >> 112);
        if (top16 == 0x2002)
        {
            into[0] = (uint)(a >> 80); // 6to4: 2002:V4ADDR::/48
            return 1;
        }

        if ((uint)(a >> 96) == 0x2001_0000)
        {
            // Teredo 2001::/32: server IPv4 in bits 32..63, client IPv4 bit-inverted in the last 32.
            into[0] = (uint)(a >> 64);
            into[1] = ~low32;
            return 2;
        }

        var interfaceHigh = (uint)(a >> 32);
        if ((interfaceHigh & 0xfdffffff) == 0x00005efe)
        {
            into[0] = low32; // ISATAP interface id ::0:5efe:a.b.c.d (or 200:5efe, the u bit set)
            return 1;
        }

        return 0;
    }

    private static string? CheckV4(uint v4, bool allowPrivate)
    {
        foreach (var m in MetadataV4)
        {
            if (v4 == m)
            {
                return Reasons.MetadataDestination;
            }
        }

        if (allowPrivate)
        {
            return null;
        }

        foreach (var (prefix, length) in PrivateV4)
        {
            if ((v4 & (uint.MaxValue << (32 - length))) == prefix)
            {
                return Reasons.PrivateDestination;
            }
        }

        return null;
    }

    private static bool InAny(UInt128 a, (UInt128 Prefix, int Length)[] ranges)
    {
        foreach (var (prefix, length) in ranges)
        {
            if ((a & (UInt128.MaxValue << (128 - length))) == prefix)
            {
                return true;
            }
        }

        return false;
    }

    private static string? Worse(string? a, string? b) =>
        a == Reasons.MetadataDestination || b == Reasons.MetadataDestination ? Reasons.MetadataDestination : a ?? b;

    private static UInt128 V6(ulong high, ulong low) => new(high, low);
}
