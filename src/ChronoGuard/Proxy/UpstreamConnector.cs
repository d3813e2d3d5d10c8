using System.Net;
using System.Net.Sockets;

namespace ChronoGuard.Proxy;

/// <summary>
/// Resolves and dials an upstream. The two steps are separate so the network guard can judge the
/// exact addresses that are then dialed (no second lookup for a rebinding resolver to exploit); one
/// deadline, owned by the caller, covers both.
/// </summary>
internal sealed class UpstreamConnector(IDnsResolver resolver, int timeoutMs)
{
    public int TimeoutMs => timeoutMs;

    public CancellationTokenSource StartDeadline(CancellationToken stopping)
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        cts.CancelAfter(timeoutMs);
        return cts;
    }

    public async ValueTask<(ConnectOutcome Outcome, IPAddress[] Addresses)> ResolveAsync(string host, CancellationToken deadline)
    {
        if (IPAddress.TryParse(host, out var literal))
        {
            return (ConnectOutcome.Connected, [literal]);
        }

        try
        {
            var addresses = await resolver.ResolveAsync(host, deadline).ConfigureAwait(false);
            return addresses.Length == 0 ? (ConnectOutcome.NameNotResolved, addresses) : (ConnectOutcome.Connected, addresses);
        }
        catch (OperationCanceledException)
        {
            return (ConnectOutcome.TimedOut, []);
        }
    }

    /// <summary>Dials each address in order until one answers; the outcome of the last failure otherwise.</summary>
    public static async ValueTask<ConnectAttempt> ConnectAsync(IPAddress[] addresses, int count, int port, CancellationToken deadline)
    {
        var outcome = ConnectOutcome.Unreachable;
        IPAddress? last = null;
        for (var i = 0; i < count; i++)
        {
            var address = addresses[i];
            last = address;
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(new IPEndPoint(address, port), deadline).ConfigureAwait(false);
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

        return new ConnectAttempt(outcome, null, last);
    }
}
