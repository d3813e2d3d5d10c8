using System.Buffers;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using ChronoGuard.Proxy;

namespace ChronoGuard.Tests.Proxy;

public sealed class TlsClientHelloTests
{
    [Theory]
    [InlineData("api.example.org")]
    [InlineData("")]
    public async Task Reads_the_SNI_of_a_real_SslStream_ClientHello_split_anywhere(string sni)
    {
        var hello = await CaptureClientHelloAsync(sni);
        var host = new byte[256];

        for (var cut = 0; cut < hello.Length; cut += 7)
        {
            Assert.Equal(TlsClientHello.Result.NeedMore, TlsClientHello.TryGetSni(new ReadOnlySequence<byte>(hello, 0, cut), host, out _));
        }

        var result = TlsClientHello.TryGetSni(new ReadOnlySequence<byte>(hello), host, out var length);
        if (sni.Length == 0)
        {
            Assert.Equal(TlsClientHello.Result.NoSni, result);
        }
        else
        {
            Assert.Equal(TlsClientHello.Result.Sni, result);
            Assert.Equal(sni, Encoding.ASCII.GetString(host, 0, length));
        }
    }

    [Fact]
    public void Plain_http_is_not_tls()
    {
        Assert.Equal(TlsClientHello.Result.NotTls, TlsClientHello.TryGetSni(new ReadOnlySequence<byte>("GET / HTTP/1.1\r\n"u8.ToArray()), new byte[256], out _));
    }

    /// <summary>The first TLS record a real client sends, captured by a loopback listener.</summary>
    internal static async Task<byte[]> CaptureClientHelloAsync(string sni)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        using var client = new TcpClient();
        await client.ConnectAsync((IPEndPoint)listener.LocalEndPoint!);
        using var server = await listener.AcceptAsync();
        var ssl = new SslStream(client.GetStream());
        var handshake = ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = sni, RemoteCertificateValidationCallback = (_, _, _, _) => false });

        var buffer = new byte[16 * 1024 + 5];
        var have = 0;
        while (have < 5 || have < 5 + ((buffer[3] << 8) | buffer[4]))
        {
            have += await server.ReceiveAsync(buffer.AsMemory(have));
        }

        server.Close();
        await Assert.ThrowsAnyAsync<Exception>(() => handshake);
        ssl.Dispose();
        return buffer[..have];
    }
}
