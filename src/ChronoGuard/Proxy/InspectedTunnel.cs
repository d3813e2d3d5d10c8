using System.Net;
using System.Net.Security;
using System.Runtime.CompilerServices;
using System.Security.Authentication;
using System.Text;
using ChronoGuard.Http;
using ChronoGuard.Inspection;
using ChronoGuard.Net;
using ChronoGuard.Policy;

namespace ChronoGuard.Proxy;

/// <summary>
/// A tunnel the gate asked to inspect (SPEC §7), whichever front end opened it: the established reply,
/// TLS terminated on the client's transport with a leaf for the tunnel's host (ALPN http/1.1 only;
/// the SNI must be that host), the tunnel's own record, then the requests inside it, each read with
/// the same head parser (origin-form, <c>Host</c> = the tunnel's host), decided through its own
/// <see cref="RequestScope"/> and forwarded by <see cref="HttpForwarder"/> over a TLS upstream
/// (<see cref="Dialer"/>, <see cref="UpstreamTls"/>), kept for the next request and, when the tunnel
/// ends, for the agent's next tunnel (<see cref="UpstreamPool"/>).
/// </summary>
internal static class InspectedTunnel
{
    private static readonly List<SslApplicationProtocol> Http11 = [SslApplicationProtocol.Http11];

    private static readonly ServerOptionsSelectionCallback SelectOptions = static (_, hello, state, _) =>
        ValueTask.FromResult(((Handshake)state!).Select(hello.ServerName));

    private enum Outcome : byte
    {
        Done,
        SniMismatch,
        SniMissing,
        TimedOut,
        Failed,
    }

    /// <summary>The tunnel is decided (allowed, to be inspected), resolved and guarded.</summary>
    /// <returns>Always false: the tunnel is the connection's last request.</returns>
    [AsyncMethodBuilder(typeof(PooledValueTaskBuilder<>))]
    public static async ValueTask<bool> RunAsync(RequestScope tunnel, GuardedAddresses addresses, InspectionContext inspection)
    {
        var connection = tunnel.Connection;
        // Nothing is dialed for the tunnel itself: each request inside dials (or reuses) its own
        // upstream, judged again by the guard. The record names the address the reply announced.
        tunnel.Decision.Dialed = addresses[0];
        await connection.SendEstablishedAsync(new IPEndPoint(addresses[0], tunnel.Decision.Port)).ConfigureAwait(false);

        connection.Clock.Enter(ConnectionPhase.ReadingHead);
        var outcome = await HandshakeAsync(tunnel, inspection).ConfigureAwait(false);
        if (outcome is Outcome.SniMismatch or Outcome.SniMissing)
        {
            // Whatever requireSniMatch says: the leaf was made for the tunnel's host, and a request
            // for another name must not reach that host under the tunnel's decision.
            tunnel.Decision.Result = DecisionResult.Refuse(Decision.Block, 403, outcome == Outcome.SniMissing ? Reasons.SniMissing : Reasons.SniMismatch);
            tunnel.Decision.Allowed = false;
            tunnel.RecordRefusal();
            return false;
        }

        if (outcome != Outcome.Done)
        {
            tunnel.SetCloseReason(outcome == Outcome.TimedOut ? ProxyReasons.HeaderTimeout : connection.IsAborted ? RequestScope.CloseReasonOf(connection) : ProxyReasons.ClientTlsFailed);
            return false;
        }

        if (!await tunnel.RecordAllowedAsync(answer: false).ConfigureAwait(false))
        {
            return false;
        }

        tunnel.ReleaseHead();
        tunnel.Established();
        var drained = false;
        try
        {
            drained = await ServeAsync(tunnel).ConfigureAwait(false);
        }
        finally
        {
            // A clean upstream left from the last request waits for the agent's next tunnel to this host.
            if (connection.TakeUpstream() is { } kept)
            {
                connection.Context.Upstreams.Return(AgentKey(tunnel), kept);
            }
        }

        // Between requests a drain, an idle keep-alive or a header timeout ends the tunnel: its close
        // record says which, whether the drain found the tunnel waiting for a request or just done with one.
        tunnel.SetCloseReason(connection.IsAborted || connection.Clock.Fired != TimeoutKind.None ? RequestScope.CloseReasonOf(connection) : drained ? ProxyReasons.Drain : ProxyReasons.Closed);
        return false;
    }

    /// <summary>The TLS server handshake under the header timeout, with the SNI held against the tunnel's host.</summary>
    [AsyncMethodBuilder(typeof(PooledValueTaskBuilder<>))]
    private static async ValueTask<Outcome> HandshakeAsync(RequestScope tunnel, InspectionContext inspection)
    {
        var connection = tunnel.Connection;
        var context = tunnel.Context;
        var handshake = new Handshake(tunnel.Decision.Host, inspection.Leaves);
        SslStream? tls = null;
        connection.BeginInspection(inner => tls = new SslStream(inner, leaveInnerStreamOpen: false));
        using var deadline = new CancellationTokenSource(TimeSpan.FromMilliseconds(context.Options.HeaderTimeoutMs), context.Time);
        try
        {
            await tls!.AuthenticateAsServerAsync(SelectOptions, handshake, deadline.Token).ConfigureAwait(false);
            return Outcome.Done;
        }
        catch (OperationCanceledException)
        {
            return Outcome.TimedOut;
        }
        catch (Exception ex) when (ex is AuthenticationException or IOException or System.Net.Sockets.SocketException or ObjectDisposedException)
        {
            return handshake.Refused ?? Outcome.Failed;
        }
    }

    /// <summary>Requests inside the tunnel, one scope each, until the client closes, a framing error, drain or revocation.</summary>
    /// <returns>True when it ended because the proxy drains, seen between two requests.</returns>
    private static async Task<bool> ServeAsync(RequestScope tunnel)
    {
        var connection = tunnel.Connection;
        var context = tunnel.Context;
        var agent = AgentKey(tunnel);
        for (var first = true; ; first = false)
        {
            if (await connection.NextRequestHeadAsync(first, originForm: true).ConfigureAwait(false) is not { } head)
            {
                return false;
            }

            if (head.TargetPort != tunnel.Decision.Port || !Ascii.EqualsIgnoreCase(head.Span(head.TargetHost), tunnel.Decision.Host))
            {
                // SNI = CONNECT host = Host: a request for another name goes nowhere under this tunnel.
                ClientConnection.ReturnHead(head);
                await connection.RefuseAsync(new Refusal(400, "DENY", ParseErrors.Reason(ParseError.HostMismatch)), audit: true).ConfigureAwait(false);
                return false;
            }

            var inner = new RequestScope(connection, FrontEnd.Inspected, head);
            inner.Decide(Describe(head, tunnel), tunnel.Decision.Host);
            if (inner.Decision.Agent is { } decided && string.Equals(decided.Id, agent, StringComparison.Ordinal))
            {
                // The request is the tunnel's agent (named to the gate as the listener's would be), and
                // is recorded as identified the way the tunnel was.
                inner.Decision.Identity = tunnel.Decision.Identity;
            }

            // A redirected connection dials only its original destination: no pooled upstream elsewhere.
            if (inner.Decision.Allowed && connection.Upstream is null && connection.OriginalDestination is null && context.Upstreams.TryTake(agent, tunnel.Decision.Host, tunnel.Decision.Port) is { } pooled)
            {
                connection.SetUpstream(pooled);
            }

            if (!await connection.RunScopeAsync(inner).ConfigureAwait(false) || connection.IsAborted)
            {
                return false;
            }

            if (connection.IsDraining)
            {
                return true;
            }
        }
    }

    /// <summary>
    /// The inner request as the gate sees it: its own method, normalised path and user agent, the
    /// tunnel's host and port, the head as received for the placeholder scan, and the tunnel's agent
    /// (inside TLS there is no Proxy-Authorization; the agent is the one the tunnel authenticated).
    /// </summary>
    private static GateRequest Describe(HttpHead head, RequestScope tunnel) => new()
    {
        FrontEnd = FrontEnd.Inspected,
        Host = head.Span(head.TargetHost),
        Port = head.TargetPort,
        Method = head.Span(head.Method),
        Path = head.Path,
        PathWithoutParameters = head.PathWithoutParameters,
        HasPathParameters = head.WithoutParametersLength >= 0,
        UserAgent = head.Span(head.UserAgent),
        Credentials = AgentCredentials.None,
        ListenerAgent = tunnel.Decision.Agent?.Id ?? tunnel.Connection.ListenerAgent,
        RawHead = head.Buffer.AsSpan(0, head.Length),
    };

    /// <summary>The pool's agent key: upstreams are shared only among one agent's tunnels.</summary>
    private static string AgentKey(RequestScope tunnel) => tunnel.Decision.Agent?.Id ?? string.Empty;

    /// <summary>One handshake's state for the options callback: the host the leaf is for, and why the SNI was refused.</summary>
    private sealed class Handshake(string host, LeafCertificates leaves)
    {
        public Outcome? Refused { get; private set; }

        public SslServerAuthenticationOptions Select(string? serverName)
        {
            // An IP literal is never sent as SNI (RFC 6066): a tunnel to one has none to compare.
            var isAddress = IPAddress.TryParse(host, out _);
            if (string.IsNullOrEmpty(serverName))
            {
                if (!isAddress)
                {
                    Refused = Outcome.SniMissing;
                    throw new AuthenticationException("no SNI for an inspected tunnel");
                }
            }
            else if (!string.Equals(serverName, host, StringComparison.OrdinalIgnoreCase))
            {
                Refused = Outcome.SniMismatch;
                throw new AuthenticationException("SNI differs from the tunnel's host");
            }

            return new SslServerAuthenticationOptions
            {
                ServerCertificateContext = leaves.For(host),
                ApplicationProtocols = Http11,
                ClientCertificateRequired = false,
            };
        }
    }
}
