using System.Net;
using System.Net.Sockets;
using ChronoGuard.Net;

namespace ChronoGuard.Tests.Transparent;

/// <summary>
/// The kernel's answer to SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST as bytes (a sockaddr_in or sockaddr_in6,
/// family in host order and port in network order), and a socket that was never redirected.
/// </summary>
public sealed class OriginalDestinationTests
{
    [Fact]
    public void A_sockaddr_in_is_the_IPv4_destination()
    {
        byte[] sockaddr = [.. BitConverter.GetBytes((ushort)2), 0x01, 0xBB, 93, 184, 216, 34, 0, 0, 0, 0, 0, 0, 0, 0];
        Assert.Equal(new IPEndPoint(IPAddress.Parse("93.184.216.34"), 443), OriginalDestination.Parse(sockaddr));
    }

    [Fact]
    public void A_sockaddr_in6_is_the_IPv6_destination_and_a_mapped_IPv4_address_is_unmapped()
    {
        var v6 = IPAddress.Parse("2001:db8::17");
        byte[] sockaddr = [.. BitConverter.GetBytes((ushort)10), 0x00, 0x16, 0, 0, 0, 0, .. v6.GetAddressBytes(), 0, 0, 0, 0];
        Assert.Equal(new IPEndPoint(v6, 22), OriginalDestination.Parse(sockaddr));

        byte[] mapped = [.. BitConverter.GetBytes((ushort)10), 0x00, 0x50, 0, 0, 0, 0, .. IPAddress.Parse("::ffff:10.1.2.3").GetAddressBytes(), 0, 0, 0, 0];
        Assert.Equal(new IPEndPoint(IPAddress.Parse("10.1.2.3"), 80), OriginalDestination.Parse(mapped));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(7)]
    public void Too_few_bytes_or_another_family_is_no_destination(int length)
    {
        Assert.Null(OriginalDestination.Parse(new byte[length]));
        byte[] unix = [.. BitConverter.GetBytes((ushort)1), 0, 80, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        Assert.Null(OriginalDestination.Parse(unix));
    }

    [Fact]
    public async Task A_connection_that_was_not_redirected_has_no_other_original_destination()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(listener.LocalEndPoint!);
        using var accepted = await listener.AcceptAsync();

        // Without conntrack the kernel has no answer; with it, an entry that was not NATed names the
        // listener itself: either way the transparent listener refuses it as its own (own_listener).
        var destination = OriginalDestination.Read(accepted);
        Assert.True(destination is null || destination.Equals(accepted.LocalEndPoint), destination?.ToString());
    }
}
