using System.Buffers.Binary;
using System.Net;
using System.Text;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Socks;

/// <summary>The client half of RFC 1928/1929, written from the RFCs over a raw socket, for driving the proxy byte by byte.</summary>
internal static class SocksClient
{
    public static byte[] Greeting(params byte[] methods) => [5, (byte)methods.Length, .. methods];

    public static byte[] Login(string id, string token) =>
        [1, (byte)id.Length, .. Encoding.ASCII.GetBytes(id), (byte)token.Length, .. Encoding.ASCII.GetBytes(token)];

    public static byte[] ConnectTo(string host, int port, byte command = 1)
    {
        byte[] address = IPAddress.TryParse(host, out var ip)
            ? [ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? (byte)1 : (byte)4, .. ip.GetAddressBytes()]
            : [3, (byte)host.Length, .. Encoding.ASCII.GetBytes(host)];
        var portBytes = new byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(portBytes, (ushort)port);
        return [5, command, 0, .. address, .. portBytes];
    }

    /// <summary>Greeting, login when given, request; returns the reply (VER REP RSV ATYP ADDR PORT) and the client, tunnel open on 0x00.</summary>
    public static async Task<(byte Reply, IPEndPoint? Bound, RawClient Client)> ConnectAsync(IPEndPoint proxy, string host, int port, string? id = null, string? token = null)
    {
        var client = await RawClient.ConnectAsync(proxy);
        await client.SendAsync(id is null ? Greeting(0) : Greeting(0, 2));
        var choice = await client.ReadExactlyAsync(2);
        Assert.Equal(5, choice[0]);
        if (choice[1] == 2)
        {
            await client.SendAsync(Login(id!, token!));
            var status = await client.ReadExactlyAsync(2);
            if (status[1] != 0)
            {
                return (0xFF, null, client);
            }
        }
        else if (choice[1] != 0)
        {
            return (0xFF, null, client);
        }

        await client.SendAsync(ConnectTo(host, port));
        var (reply, bound) = await ReadReplyAsync(client);
        return (reply, bound, client);
    }

    public static async Task<(byte Reply, IPEndPoint Bound)> ReadReplyAsync(RawClient client)
    {
        var head = await client.ReadExactlyAsync(4);
        Assert.Equal(5, head[0]);
        var address = await client.ReadExactlyAsync(head[3] == 4 ? 16 : 4);
        var port = await client.ReadExactlyAsync(2);
        return (head[1], new IPEndPoint(new IPAddress(address), BinaryPrimitives.ReadUInt16BigEndian(port)));
    }
}
