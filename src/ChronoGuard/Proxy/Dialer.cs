using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using ChronoGuard.Inspection;
using ChronoGuard.Net;

namespace ChronoGuard.Proxy;

/// <summary>What a dial did: the upstream when one answered, else why not; the address tried last.</summary>
internal readonly record struct DialResult(ConnectOutcome Outcome, Upstream? Upstream, IPAddress? Address, long ElapsedTicks);

/// <summary>
/// Opens upstream connections. It takes only <see cref="GuardedAddresses"/> (so only addresses the guard
/// passed), and reports back a value: it knows no request scope, gate or connection.
/// </summary>
internal static class Dialer
{
    /// <summary>
    /// Dials the guarded addresses in order until one answers, all under ConnectTimeoutMs. With
    /// <paramref name="tls"/> (an inspected request's upstream) the answer must also complete TLS for
    /// <paramref name="host"/> within the same deadline (<see cref="UpstreamTls"/>); an address whose
    /// handshake fails is not retried on the next one: the name's certificate is the same there.
    /// </summary>
    [AsyncMethodBuilder(typeof(PooledValueTaskBuilder<>))]
    public static async ValueTask<DialResult> ConnectAsync(ProxyContext context, string host, int port, GuardedAddresses addresses, bool tls = false)
    {
        var started = Stopwatch.GetTimestamp();
        using var deadline = new CancellationTokenSource(TimeSpan.FromMilliseconds(context.Options.ConnectTimeoutMs), context.Time);
        var outcome = ConnectOutcome.Unreachable;
        IPAddress? last = null;
        for (var i = 0; i < addresses.Count; i++)
        {
            var address = addresses[i];
            last = address;
            Socket socket;
            try
            {
                socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            }
            catch (SocketException ex) when (ex.SocketErrorCode == SocketError.TooManyOpenSockets)
            {
                // No descriptor for the socket (EMFILE/ENFILE): the client is answered 503 and the record
                // says so, instead of the exception closing the connection unanswered.
                context.Descriptors.Exhausted("dial");
                outcome = ConnectOutcome.NoDescriptors;
                break;
            }

            try
            {
                await socket.ConnectAsync(new IPEndPoint(address, port), deadline.Token).ConfigureAwait(false);
                var upstream = new Upstream(new Transport(socket, PipeOptionsFor.Upstream), host, port, address);
                if (tls)
                {
                    var handshake = await UpstreamTls.AuthenticateAsync(context.Inspection?.Trust ?? UpstreamTrust.System, upstream, deadline.Token).ConfigureAwait(false);
                    if (handshake != ConnectOutcome.Connected)
                    {
                        upstream.Dispose();
                        return new DialResult(handshake, null, address, 0);
                    }
                }

                return new DialResult(ConnectOutcome.Connected, upstream, address, Stopwatch.GetTimestamp() - started);
            }
            catch (OperationCanceledException)
            {
                socket.Dispose();
                outcome = ConnectOutcome.TimedOut;
                break;
            }
            catch (SocketException ex)
            {
                socket.Dispose();
                outcome = ex.SocketErrorCode switch
                {
                    SocketError.ConnectionRefused => ConnectOutcome.Refused,
                    SocketError.TooManyOpenSockets => ConnectOutcome.NoDescriptors,
                    SocketError.TimedOut => ConnectOutcome.TimedOut,
                    _ => ConnectOutcome.Unreachable,
                };
            }
        }

        return new DialResult(outcome, null, last, 0);
    }

    /// <summary>The status and reason a failed resolve or dial answers.</summary>
    public static (int Status, string Reason) Failure(ConnectOutcome outcome) => outcome switch
    {
        ConnectOutcome.TimedOut => (504, ProxyReasons.UpstreamTimeout),
        ConnectOutcome.NameNotResolved => (502, ProxyReasons.UpstreamUnresolved),
        ConnectOutcome.Refused => (502, ProxyReasons.UpstreamRefused),
        ConnectOutcome.NoDescriptors => (503, ProxyReasons.DescriptorsExhausted),
        ConnectOutcome.TlsInvalid => (502, ProxyReasons.UpstreamTlsInvalid),
        _ => (502, ProxyReasons.UpstreamUnreachable),
    };
}
