using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using ChronoGuard.Inspection;

namespace ChronoGuard.Tests.Inspection;

/// <summary>
/// A loopback HTTPS server that presents <see cref="LeafCertificates.For"/> of the client's SNI, as an
/// inspected tunnel does, and answers every request "200 ok"; for real clients (curl) to judge the leaves.
/// </summary>
internal sealed class LeafServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;

    /// <param name="noSni">The host whose leaf a client that sends no SNI (curl to an IP literal) gets.</param>
    public LeafServer(LeafCertificates leaves, string noSni = "localhost")
    {
        _listener.Start();
        _accepting = AcceptAsync(leaves, noSni);
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    private async Task AcceptAsync(LeafCertificates leaves, string noSni)
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            _ = ServeAsync(client, leaves, noSni);
        }
    }

    private static async Task ServeAsync(TcpClient client, LeafCertificates leaves, string noSni)
    {
        using (client)
        {
            try
            {
                await using var tls = new SslStream(client.GetStream());
                await tls.AuthenticateAsServerAsync(
                    (_, hello, _, _) => ValueTask.FromResult(new SslServerAuthenticationOptions
                    {
                        ServerCertificateContext = leaves.For(string.IsNullOrEmpty(hello.ServerName) ? noSni : hello.ServerName),
                        ApplicationProtocols = [SslApplicationProtocol.Http11],
                    }),
                    null);
                var buffer = new byte[4096];
                var head = new StringBuilder();
                while (!head.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
                {
                    var n = await tls.ReadAsync(buffer);
                    if (n == 0)
                    {
                        return;
                    }

                    head.Append(Encoding.ASCII.GetString(buffer, 0, n));
                }

                await tls.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"u8.ToArray());
                await tls.ShutdownAsync();
            }
            catch (Exception ex) when (ex is IOException or System.Security.Authentication.AuthenticationException)
            {
                // The client refused the leaf: what the test asserts on, from the client's side.
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accepting;
        _stop.Dispose();
    }
}
