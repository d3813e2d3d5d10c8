using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Text;
using ChronoGuard.Http;
using ChronoGuard.Policy;

namespace ChronoGuard.Proxy;

/// <summary>
/// A connection the pod's rules redirected to a transparent listener (SPEC §10). The client believes it
/// is talking to its destination, so nothing is negotiated: the destination is the one the kernel
/// remembers (<see cref="OriginalDestination"/>), the name comes from the client's first bytes (a TLS
/// ClientHello's SNI, a plain-HTTP <c>Host</c>) or, for protocols that carry none (SSH, databases, a
/// server that speaks first), from what the DNS guard answered this agent for that address. The name
/// is believed only for an address it resolves to (<see cref="ResolveAsync"/>: the one place a
/// transparent request gets addresses to dial). Then the same scope, gate, tunnel sequence and HTTP
/// forwarder as every other front end; only the words of a refusal are this front end's own.
/// </summary>
internal sealed class TransparentConnection : ClientConnection
{
    // A fatal TLS alert record (RFC 8446 §6): content type 21, legacy version 3.3, length 2, level 2
    // (fatal), description 49 (access_denied). A client that sent a ClientHello reads it as a refusal.
    private static readonly byte[] AccessDeniedAlert = [21, 3, 3, 0, 2, 2, 49];

    // How much of the first bytes is looked at to tell an HTTP request line: a method, its target and
    // version fit in this for every request a client sends in practice; a longer line that begins
    // like one is taken for one (its head is then the parser's to refuse).
    private const int RequestLineProbeBytes = 4096;

    private readonly TransparentConnectionFactory _listener;
    private readonly IPEndPoint? _destination;
    private Shape _shape;

    public TransparentConnection(ProxyServer server, Socket socket, long id, TransparentConnectionFactory listener, IPEndPoint? destination)
        : base(server, socket, id, listener.Agent)
    {
        _listener = listener;
        _destination = destination;
    }

    private enum Shape : byte
    {
        /// <summary>Nothing read yet, or bytes of a protocol the proxy does not read (SSH, databases).</summary>
        Opaque,

        /// <summary>The client's first bytes are a TLS handshake.</summary>
        Tls,

        /// <summary>The client's first bytes are an HTTP request line.</summary>
        Http,
    }

    /// <summary>Where the client was going: every request of this connection is dialed there and nowhere else.</summary>
    public override IPEndPoint? OriginalDestination => _destination;

    protected override async Task ServeAsync()
    {
        // Not redirected (a connection made to the listener itself), or redirected to one of our own
        // listeners: serving it would loop through the sidecar.
        var destination = _destination ?? Transport.LocalEndPoint;
        if (destination is null)
        {
            return;
        }

        if (_destination is null || _listener.Own.Contains(destination))
        {
            await RefuseWithoutNameAsync(destination, ProxyReasons.OwnListener).ConfigureAwait(false);
            return;
        }

        if (!await WaitForFirstBytesAsync().ConfigureAwait(false))
        {
            // Silence: a protocol where the server speaks first, decided by the address's name. A client
            // that speaks before its server does ends that tunnel unused and is served below from its
            // bytes, like any client that spoke first.
            if (!await RunTunnelAsync(destination, default, silent: true).ConfigureAwait(false) || IsAborted || IsDraining)
            {
                return;
            }

            Clock.Enter(ConnectionPhase.ReadingHead);
        }

        // Each look at the first bytes leaves them unexamined once it has seen enough, so the next
        // reader (the head parser, the tunnel's ClientHello check) gets them at once; only a look that
        // needs more marks them examined, so that its next read waits for new bytes.
        var read = await Input.ReadAsync().ConfigureAwait(false);
        var buffer = read.Buffer;
        Input.AdvanceTo(buffer.Start);
        if (read.IsCanceled || IsAborted || buffer.IsEmpty)
        {
            await EndSilentAsync(read).ConfigureAwait(false);
            return;
        }

        if (buffer.FirstSpan[0] == 22)
        {
            _shape = Shape.Tls;
            await ServeTlsAsync(destination).ConfigureAwait(false);
        }
        else if (await LooksLikeHttpAsync().ConfigureAwait(false) is not { } http)
        {
            // The client stalled in the middle of its first word: refused 408, nothing to decide.
            return;
        }
        else if (http)
        {
            _shape = Shape.Http;
            await ServeHttpAsync(destination).ConfigureAwait(false);
        }
        else
        {
            await RunTunnelAsync(destination, default).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Waits until the client sends its first byte or <see cref="TransparentConnectionFactory.FirstBytesMs"/>
    /// pass; false on silence (nothing at all arrived by the time the wait ends).
    /// </summary>
    private ValueTask<bool> WaitForFirstBytesAsync() =>
        Transport.WaitForBytesAsync(TimeSpan.FromMilliseconds(_listener.FirstBytesMs), Context.Time);

    /// <summary>A client that left (or was timed out) before its first byte could be judged.</summary>
    private async Task EndSilentAsync(ReadResult read)
    {
        if (read.IsCanceled && Clock.Fired == TimeoutKind.Header && !IsAborted)
        {
            await RefuseAsync(new Refusal(408, "DENY", ProxyReasons.HeaderTimeout), audit: true).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Whether the first bytes are an HTTP request line (<see cref="ProbeHttp"/>). Reads more bytes while
    /// those that have arrived cannot tell; nothing is consumed.
    /// </summary>
    /// <returns>Null when the client stalled past the header timeout in its first word (refused 408 here).</returns>
    private async ValueTask<bool?> LooksLikeHttpAsync()
    {
        while (true)
        {
            var read = await Input.ReadAsync().ConfigureAwait(false);
            var verdict = ProbeHttp(read.Buffer);
            if (verdict >= 0 && !read.IsCanceled && !IsAborted)
            {
                Input.AdvanceTo(read.Buffer.Start);
                return verdict == 1;
            }

            Input.AdvanceTo(read.Buffer.Start, read.Buffer.End);
            if (read.IsCanceled || IsAborted)
            {
                // Never taken for another protocol's bytes: a word cut short by the header timeout is
                // refused as a head that did not arrive in time, not relayed as an opaque tunnel.
                await EndSilentAsync(read).ConfigureAwait(false);
                return null;
            }

            if (read.IsCompleted)
            {
                // The client's whole say was shorter than a method and its space: decided as opaque bytes.
                return false;
            }
        }
    }

    /// <summary>
    /// 1: an HTTP request line begins; 0: not HTTP; -1: too few bytes to tell. What an HTTP server would
    /// parse as a request must be judged as HTTP (Host, path rules), never relayed as another protocol's
    /// bytes: servers skip blank lines before the request line (RFC 9112 §2.2; nginx and llhttp any
    /// number of CR and LF) and some take any token as a method (Go serves <c>get</c>). So: a method of
    /// upper-case letters and a space, as every registered method is spelled; any token and a space
    /// behind blank lines; or any token, a space and a line that names an <c>HTTP/</c> version. A text
    /// protocol of lower-case commands (memcached's <c>get key</c>) is not HTTP.
    /// </summary>
    private static int ProbeHttp(in ReadOnlySequence<byte> buffer)
    {
        Span<byte> probe = stackalloc byte[RequestLineProbeBytes];
        var n = (int)Math.Min(buffer.Length, RequestLineProbeBytes);
        buffer.Slice(0, n).CopyTo(probe);
        var bytes = probe[..n];
        var full = n == RequestLineProbeBytes;
        var start = bytes.IndexOfAnyExcept(" \t\r\n"u8);
        if (start < 0)
        {
            return full ? 1 : -1;
        }

        var line = bytes[start..];
        var method = line.IndexOfAnyExcept(HttpChars.TChars);
        if (method < 0)
        {
            return full ? 0 : -1;
        }

        if (method == 0 || line[method] != (byte)' ')
        {
            return 0;
        }

        if (start > 0 || line[..method].IndexOfAnyExceptInRange((byte)'A', (byte)'Z') < 0)
        {
            return 1;
        }

        var end = line.IndexOf((byte)'\n');
        if (end < 0)
        {
            return full ? 1 : -1;
        }

        return line[method..end].IndexOf(" HTTP/"u8) >= 0 ? 1 : 0;
    }

    /// <summary>A TLS client: its SNI names the destination (none: the address's name, as for any other protocol).</summary>
    private async Task ServeTlsAsync(IPEndPoint destination)
    {
        while (true)
        {
            var read = await Input.ReadAsync().ConfigureAwait(false);
            var buffer = read.Buffer;
            var result = Sni(buffer, out var name);
            if (result != TlsClientHello.Result.NeedMore)
            {
                Input.AdvanceTo(buffer.Start);
                // An SNI that is not one valid name, ECH, or none: the tunnel sequence's ClientHello check
                // judges it against the name decided here, as it would for a CONNECT.
                await RunTunnelAsync(destination, name).ConfigureAwait(false);
                return;
            }

            Input.AdvanceTo(buffer.Start, buffer.End);
            if (read.IsCanceled || read.IsCompleted || IsAborted)
            {
                if (read.IsCanceled && Clock.Fired == TimeoutKind.Header && !IsAborted)
                {
                    // A ClientHello that never ends: refused like a tunnel whose hello timed out.
                    await RefuseWithoutNameAsync(destination, ProxyReasons.SniTimeout).ConfigureAwait(false);
                }

                return;
            }
        }
    }

    /// <summary>The ClientHello's verdict, and its SNI when it names one host.</summary>
    private static TlsClientHello.Result Sni(in ReadOnlySequence<byte> buffer, out byte[]? name)
    {
        Span<byte> host = stackalloc byte[256];
        var result = TlsClientHello.TryGetSni(buffer, host, out var length);
        name = result == TlsClientHello.Result.Found ? host[..length].ToArray() : null;
        return result;
    }

    /// <summary>Decides and runs the connection as one tunnel to <paramref name="destination"/>, named by <paramref name="sni"/> or the DNS guard.</summary>
    /// <returns>True only when a silent client spoke before its server (<see cref="TunnelRelay.RunAsync"/>): serve it from its bytes.</returns>
    private async Task<bool> RunTunnelAsync(IPEndPoint destination, byte[]? sni, bool silent = false)
    {
        Clock.Enter(ConnectionPhase.Busy);
        var named = sni is { Length: > 0 };
        var host = named ? sni! : NameOf(destination.Address);
        var scope = new RequestScope(this, FrontEnd.Transparent, null) { AwaitsServer = silent };
        Decide(scope, host, destination.Port, nameless: !named && host.Length == 0, default);
        return await RunScopeAsync(scope).ConfigureAwait(false);
    }

    /// <summary>Plain HTTP: requests are read as an origin server reads them and forwarded to the original destination.</summary>
    private async Task ServeHttpAsync(IPEndPoint destination)
    {
        for (var first = true; ; first = false)
        {
            if (await NextRequestHeadAsync(first, originForm: true).ConfigureAwait(false) is not { } head)
            {
                return;
            }

            if (head.IsConnect || !PortAgrees(head, destination.Port))
            {
                // CONNECT is a proxy's method, and a Host port other than the destination's is a name
                // for somewhere else: neither goes anywhere from here.
                ReturnHead(head);
                await RefuseAsync(new Refusal(400, "DENY", ParseErrors.Reason(head.IsConnect ? ParseError.BadMethod : ParseError.HostMismatch)), audit: true).ConfigureAwait(false);
                return;
            }

            var scope = new RequestScope(this, FrontEnd.Http, head);
            var kept = Upstream;
            var knownHost = kept is not null && kept.Serves(head.Span(head.TargetHost), head.TargetPort) ? kept.Host : null;
            Decide(scope, head.Span(head.TargetHost), destination.Port, nameless: false, head, knownHost);
            if (!await RunScopeAsync(scope).ConfigureAwait(false) || IsAborted || IsDraining)
            {
                return;
            }
        }
    }

    /// <summary>
    /// A Host without a port means the destination's (the parser assumed 443); one with a port must name
    /// the destination's. The head's port becomes the destination's, which the upstream is dialed on.
    /// </summary>
    private static bool PortAgrees(HttpHead head, int port)
    {
        var authority = head.Span(head.HostHeader);
        var colon = authority.LastIndexOf((byte)':');
        var explicitPort = colon > authority.LastIndexOf((byte)']');
        if (explicitPort && head.TargetPort != port)
        {
            return false;
        }

        head.TargetPort = port;
        return true;
    }

    /// <summary>
    /// Asks the gate about the request as the listener's agent, then the two refusals only this front
    /// end can give: a connection without a name to an address no policy names is
    /// <c>unresolved_destination</c> rather than a default deny.
    /// </summary>
    private void Decide(RequestScope scope, ReadOnlySpan<byte> host, int port, bool nameless, HttpHead? head, string? knownHost = null)
    {
        Span<byte> literal = stackalloc byte[64];
        var written = 0;
        if (host.IsEmpty)
        {
            // No name at all: the request is to the address itself, as an IP literal.
            (_destination ?? Transport.LocalEndPoint)!.Address.TryFormat(literal, out written);
        }

        scope.Decide(new GateRequest
        {
            FrontEnd = head is null ? FrontEnd.Transparent : FrontEnd.Http,
            Host = host.IsEmpty ? literal[..written] : host,
            Port = port,
            Method = head is null ? default : head.Span(head.Method),
            Path = head is null ? default : head.Path,
            PathWithoutParameters = head is null ? default : head.PathWithoutParameters,
            HasPathParameters = head is not null && head.WithoutParametersLength >= 0,
            UserAgent = head is null ? default : head.Span(head.UserAgent),
            Credentials = AgentCredentials.None,
            ListenerAgent = ListenerAgent,
            Redirected = true,
            RawHead = head is null ? default : head.Buffer.AsSpan(0, head.Length),
        }, knownHost);

        // The address is known before anything is resolved: a refusal's record names it too.
        scope.Decision.Dialed = (_destination ?? Transport.LocalEndPoint)!.Address;
        if (nameless && scope.Decision.Result.Reason == Reasons.DefaultDeny)
        {
            scope.Restate(DecisionResult.Refuse(Decision.Block, 403, ProxyReasons.UnresolvedDestination));
        }
    }

    /// <summary>The name the DNS guard last answered this agent with for <paramref name="address"/>, as ASCII; empty when none.</summary>
    private byte[] NameOf(IPAddress address) =>
        _listener.Answers.TryGetName(ListenerAgent!, address, Context.Time.GetUtcNow().ToUnixTimeMilliseconds(), out var name)
            ? Encoding.ASCII.GetBytes(name)
            : [];

    /// <summary>
    /// A refusal before any name could be read (a loop, a ClientHello that never ended): decided as the
    /// listener's agent to the destination's address, so the record says whose connection it was and
    /// where it went, then refused whatever the policy says.
    /// </summary>
    private async Task RefuseWithoutNameAsync(IPEndPoint destination, string reason)
    {
        var scope = new RequestScope(this, FrontEnd.Transparent, null);
        Decide(scope, default, destination.Port, nameless: false, null);
        scope.Overrule(DecisionResult.Refuse(Decision.Block, 403, reason), always: true);
        scope.Decision.Dialed = destination.Address;
        await RunScopeAsync(scope).ConfigureAwait(false);
    }

    /// <summary>
    /// The only addresses a request on this connection may dial: the original destination, once the
    /// decided name is shown to resolve to it (SPEC §10) — an IP literal that is the destination, a name
    /// the DNS guard answered this agent with that address within its TTL, or one a fresh lookup of the
    /// name returns. Otherwise <c>BLOCK name_address_mismatch</c>: an allowed SNI or Host sent to another
    /// address goes nowhere. The network guard then judges the address as always.
    /// </summary>
    public override async ValueTask<(ConnectOutcome Outcome, GuardedAddresses Addresses)> ResolveAsync(RequestScope scope)
    {
        var address = _destination!.Address;
        var host = scope.Decision.Host;
        var agent = scope.Decision.Agent?.Id ?? ListenerAgent!;
        bool bound;
        if (IPAddress.TryParse(host, out var literal))
        {
            bound = literal.Equals(address) || (literal.IsIPv4MappedToIPv6 && literal.MapToIPv4().Equals(address));
        }
        else
        {
            bound = _listener.Answers.WasAnswered(agent, host, address, Context.Time.GetUtcNow().ToUnixTimeMilliseconds())
                || await ResolvesToAsync(host, address).ConfigureAwait(false);
        }

        if (!bound)
        {
            scope.Decision.Dialed = address;
            scope.Overrule(DecisionResult.Refuse(Decision.Block, 403, ProxyReasons.NameAddressMismatch), always: false);
            if (!scope.Decision.Allowed)
            {
                return (ConnectOutcome.NotAllowed, default);
            }
        }

        return GuardedAddresses.Judge(scope, address);
    }

    /// <summary>A fresh lookup by the sidecar's own resolver, under ConnectTimeoutMs; a failure binds nothing.</summary>
    private async ValueTask<bool> ResolvesToAsync(string host, IPAddress address)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromMilliseconds(Context.Options.ConnectTimeoutMs), Context.Time);
        try
        {
            var addresses = await Context.Resolver.ResolveAsync(host, deadline.Token).ConfigureAwait(false);
            foreach (var a in addresses)
            {
                if (a.Equals(address) || (a.IsIPv4MappedToIPv6 && a.MapToIPv4().Equals(address)))
                {
                    return true;
                }
            }

            return false;
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException)
        {
            return false;
        }
    }

    /// <summary>
    /// A client that thinks it reached its destination: plain HTTP gets an HTTP response, a TLS client a
    /// fatal <c>access_denied</c> alert for a refusal by policy, anything else (and every failure to
    /// reach the destination) a reset, as a refused connection would look.
    /// </summary>
    protected override async ValueTask WriteRefusalAsync(Refusal refusal)
    {
        if (_shape == Shape.Http)
        {
            await WriteHttpRefusalAsync(refusal).ConfigureAwait(false);
            return;
        }

        if (_shape == Shape.Tls && refusal.Status is 403 or 407 or 429)
        {
            await Transport.SendAsync(AccessDeniedAlert).ConfigureAwait(false);
            return;
        }

        Transport.ResetOnClose();
        Abort(TimeoutKind.None);
    }

    /// <summary>Nothing to announce: the client believes it is connected already.</summary>
    public override ValueTask SendEstablishedAsync(IPEndPoint dialed) => ValueTask.CompletedTask;
}
