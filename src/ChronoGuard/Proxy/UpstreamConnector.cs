using System.Net;
using System.Net.Sockets;
using System.Text;

namespace ChronoGuard.Proxy;

/// <summary>Resolves and dials an upstream within one deadline (DNS included), trying each address once.</summary>
internal sealed class UpstreamConnector(IDnsResolver resolver, int timeoutMs)
{
    public async ValueTask<ConnectAttempt> ConnectAsync(ReadOnlyMemory<byte> host, int port, CancellationToken stopping)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        cts.CancelAfter(timeoutMs);
        IPAddress[] addresses;
        try
        {
            var name = Encoding.ASCII.GetString(host.Span);
            addresses = IPAddress.TryParse(name, out var literal)
                ? [literal]
                : await resolver.ResolveAsync(name, cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return new ConnectAttempt(ConnectOutcome.TimedOut, null, null);
        }

        if (addresses.Length == 0)
        {
            return new ConnectAttempt(ConnectOutcome.NameNotResolved, null, null);
        }

        var outcome = ConnectOutcome.Unreachable;
        foreach (var address in addresses)
        {
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(new IPEndPoint(address, port), cts.Token).ConfigureAwait(false);
                return new ConnectAttempt(ConnectOutcome.Connected, socket, address);
            }
            catch (OperationCanceledException)
            {
                socket.Dispose();
                return new ConnectAttempt(ConnectOutcome.TimedOut, null, address);
            }
            catch (SocketException ex)
            {
                socket.Dispose();
                outcome = ex.SocketErrorCode switch
                {
                    SocketError.ConnectionRefused => ConnectOutcome.Refused,
                    SocketError.TimedOut => ConnectOutcome.TimedOut,
                    _ => ConnectOutcome.Unreachable,
                };
            }
        }

        return new ConnectAttempt(outcome, null, addresses[^1]);
    }
}
