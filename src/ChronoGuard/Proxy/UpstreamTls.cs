using System.Net.Security;
using System.Runtime.CompilerServices;
using System.Security.Authentication;
using ChronoGuard.Inspection;
using ChronoGuard.Net;

namespace ChronoGuard.Proxy;

/// <summary>
/// The TLS client side of an inspected request's upstream (SPEC §7): SNI is the tunnel's host, ALPN
/// offers only http/1.1 (the forwarder speaks HTTP/1.1), and the certificate must validate for that
/// host against the upstream trust (the system's, or <c>Inspection:UpstreamTrustFile</c>). The TLS
/// stream goes under the upstream's transport, so the forwarder, the body copier and the scope's one
/// upstream send work on it unchanged.
/// </summary>
internal static class UpstreamTls
{
    private static readonly List<SslApplicationProtocol> Http11 = [SslApplicationProtocol.Http11];

    /// <returns>Connected, TimedOut (under the dial's deadline), or TlsInvalid for any other failed handshake.</returns>
    [AsyncMethodBuilder(typeof(PooledValueTaskBuilder<>))]
    public static async ValueTask<ConnectOutcome> AuthenticateAsync(UpstreamTrust trust, Upstream upstream, CancellationToken ct)
    {
        SslStream? tls = null;
        upstream.Transport.Layer(inner => tls = new SslStream(inner, leaveInnerStreamOpen: false));
        var host = upstream.Host;
        var options = new SslClientAuthenticationOptions
        {
            // An IP literal is never sent as SNI (RFC 6066); SslStream knows, and still checks the name.
            TargetHost = host,
            ApplicationProtocols = Http11,
            CertificateChainPolicy = trust.NewChainPolicy(),
            RemoteCertificateValidationCallback = (_, certificate, chain, errors) => trust.Validate(host, certificate, chain, errors),
        };
        try
        {
            await tls!.AuthenticateAsClientAsync(options, ct).ConfigureAwait(false);
            return ConnectOutcome.Connected;
        }
        catch (OperationCanceledException)
        {
            return ConnectOutcome.TimedOut;
        }
        catch (Exception ex) when (ex is AuthenticationException or IOException or System.Net.Sockets.SocketException or ObjectDisposedException)
        {
            return ConnectOutcome.TlsInvalid;
        }
    }
}
