using System.Net;
using System.Net.Security;
using System.Net.Sockets;

namespace ChronoGuard.Tests.Support;

/// <summary>Real ClientHellos, as .NET's SslStream writes them, captured over a loopback socket pair.</summary>
internal static class ClientHellos
{
    public static async Task<byte[]> CaptureAsync(string targetHost)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(listener.LocalEndPoint!);
        using var server = await listener.AcceptAsync();
        var ssl = new SslStream(new NetworkStream(client, ownsSocket: false));
        var handshake = ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = targetHost });

        // One TLS record: 5-byte header with the record length.
        var header = new byte[5];
        await ReadExactly(server, header);
        var body = new byte[(header[3] << 8) | header[4]];
        await ReadExactly(server, body);
        server.Dispose();
        client.Dispose();
        try
        {
            await handshake;
        }
        catch (Exception ex) when (ex is IOException or System.Security.Authentication.AuthenticationException or SocketException or ObjectDisposedException)
        {
        }

        ssl.Dispose();
        return [.. header, .. body];
    }

    /// <summary>The same handshake message split into two TLS records at <paramref name="at"/> bytes of the message.</summary>
    public static byte[] SplitIntoTwoRecords(byte[] record, int at)
    {
        var message = record.AsSpan(5);
        byte[] Record(ReadOnlySpan<byte> part) => [record[0], record[1], record[2], (byte)(part.Length >> 8), (byte)part.Length, .. part];
        return [.. Record(message[..at]), .. Record(message[at..])];
    }

    /// <summary>A one-record hello with one more extension at the end of its list, every length adjusted.</summary>
    public static byte[] WithExtension(byte[] record, ushort type, byte[] data)
    {
        var hello = record.ToList();
        var p = 5 + 4 + 2 + 32;
        p += 1 + hello[p];
        p += 2 + ((hello[p] << 8) | hello[p + 1]);
        p += 1 + hello[p];
        var extensions = ((hello[p] << 8) | hello[p + 1]) + 4 + data.Length;
        hello[p] = (byte)(extensions >> 8);
        hello[p + 1] = (byte)extensions;
        hello.AddRange([(byte)(type >> 8), (byte)type, (byte)(data.Length >> 8), (byte)data.Length, .. data]);
        var message = hello.Count - 9;
        (hello[6], hello[7], hello[8]) = ((byte)(message >> 16), (byte)(message >> 8), (byte)message);
        var fragment = hello.Count - 5;
        (hello[3], hello[4]) = ((byte)(fragment >> 8), (byte)fragment);
        return [.. hello];
    }

    private static async Task ReadExactly(Socket socket, byte[] buffer)
    {
        var read = 0;
        while (read < buffer.Length)
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory(read));
            if (n == 0)
            {
                throw new IOException("closed before the ClientHello was complete");
            }

            read += n;
        }
    }
}
