using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

namespace ChronoGuard.Tests.Inspection;

/// <summary>A real TLS handshake over loopback TCP: a server presenting a certificate context, a client trusting only given roots.</summary>
internal static class InspectionHandshake
{
    /// <summary>Connects with SNI <paramref name="host"/>; returns the certificate the client saw and whether it trusted it.</summary>
    public static async Task<(X509Certificate2 Seen, bool Trusted, SslPolicyErrors Errors, X509ChainStatusFlags Chain)> RunAsync(
        SslStreamCertificateContext server, string host, X509Certificate2 root)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        using var accepted = await listener.AcceptTcpClientAsync();
        await using var serverTls = new SslStream(accepted.GetStream());
        await using var clientTls = new SslStream(client.GetStream());
        X509Certificate2? seen = null;
        var errors = SslPolicyErrors.None;
        var chainStatus = X509ChainStatusFlags.NoError;
        var trusted = false;
        var serverSide = serverTls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
        {
            ServerCertificateContext = server,
            ApplicationProtocols = [SslApplicationProtocol.Http11],
        });
        var clientSide = clientTls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = host,
            ApplicationProtocols = [SslApplicationProtocol.Http11],
            RemoteCertificateValidationCallback = (_, cert, chain, e) =>
            {
                seen = new X509Certificate2(cert!);
                errors = e & ~SslPolicyErrors.RemoteCertificateChainErrors;
                using var custom = new X509Chain();
                custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                custom.ChainPolicy.CustomTrustStore.Add(root);
                custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                custom.ChainPolicy.ExtraStore.AddRange(chain!.ChainPolicy.ExtraStore);
                var built = custom.Build(seen);
                foreach (var s in custom.ChainStatus)
                {
                    chainStatus |= s.Status;
                }

                trusted = built && errors == SslPolicyErrors.None;
                return trusted;
            },
        });
        try
        {
            await Task.WhenAll(serverSide, clientSide).WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(SslApplicationProtocol.Http11, clientTls.NegotiatedApplicationProtocol);
        }
        catch (Exception ex) when (!trusted && seen is not null && ex is AuthenticationException or IOException)
        {
            // The client refused what it saw: the test judges that.
        }

        return (seen!, trusted, errors, chainStatus);
    }
}
