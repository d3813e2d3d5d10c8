using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace ChronoGuard.Net;

/// <summary>
/// Where a connection redirected by netfilter (<c>REDIRECT</c>/<c>DNAT</c>) was going before the
/// kernel rewrote it: <c>getsockopt(SO_ORIGINAL_DST)</c> for IPv4 and <c>IP6T_SO_ORIGINAL_DST</c> for
/// IPv6, read from the connection's conntrack entry (linux/netfilter_ipv4.h, linux/netfilter_ipv6/ip6_tables.h:
/// both option numbers are 80; the answer is a <c>sockaddr_in</c> or <c>sockaddr_in6</c>).
/// </summary>
internal static class OriginalDestination
{
    private const int SolIp = 0;
    private const int SolIpv6 = 41;
    private const int SoOriginalDst = 80;

    /// <summary>
    /// The original destination, or null when the kernel has none (a connection made straight to the
    /// listener, not redirected, or a socket that is not TCP over IP).
    /// </summary>
    public static IPEndPoint? Read(Socket socket)
    {
        Span<byte> address = stackalloc byte[28];
        try
        {
            var v6 = socket.AddressFamily == AddressFamily.InterNetworkV6;
            var length = socket.GetRawSocketOption(v6 ? SolIpv6 : SolIp, SoOriginalDst, address);
            return Parse(address[..length]);
        }
        catch (SocketException)
        {
            // ENOENT: no conntrack entry for this connection (it was not redirected).
            return null;
        }
    }

    /// <summary>A <c>sockaddr_in</c> (16 bytes) or <c>sockaddr_in6</c> (28) as the kernel writes it: family in host order, port in network order.</summary>
    internal static IPEndPoint? Parse(ReadOnlySpan<byte> sockaddr)
    {
        if (sockaddr.Length < 8)
        {
            return null;
        }

        var family = BitConverter.IsLittleEndian ? BinaryPrimitives.ReadUInt16LittleEndian(sockaddr) : BinaryPrimitives.ReadUInt16BigEndian(sockaddr);
        var port = BinaryPrimitives.ReadUInt16BigEndian(sockaddr[2..]);
        return family switch
        {
            2 => new IPEndPoint(new IPAddress(sockaddr.Slice(4, 4)), port),
            10 when sockaddr.Length >= 24 => new IPEndPoint(Unmapped(new IPAddress(sockaddr.Slice(8, 16))), port),
            _ => null,
        };
    }

    private static IPAddress Unmapped(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
}
