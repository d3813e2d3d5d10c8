using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using ChronoGuard.Net;

namespace ChronoGuard.Proxy;

/// <summary>
/// The tunnel sequence, written once for every front end that opens tunnels (HTTP CONNECT, SOCKS5):
/// the decided request is refused, or resolved and guarded; the ClientHello judged before anything is
/// dialed (when the gate asks for it); dialed; recorded; announced in the front end's own words
/// (<see cref="ClientConnection.SendEstablishedAsync"/>); then relayed both ways until both directions
/// end, rechecked by the heartbeat meanwhile. The scope's exit, in the connection, ends it.
/// </summary>
internal static class TunnelRelay
{
    // One receive's worth: large enough that a bulk tunnel moves 64 KiB per syscall pair, and rented
    // only while bytes are in flight, so an idle tunnel holds none.
    private const int BufferBytes = 64 * 1024;

    /// <returns>
    /// False: a tunnel is the connection's last request. True only when a client taken for one that
    /// waits for its server spoke first instead (<see cref="ClientSpeaksFirstAsync"/>): the tunnel ended
    /// unused and the front end serves the connection from the client's bytes.
    /// </returns>
    [AsyncMethodBuilder(typeof(PooledValueTaskBuilder<>))]
    public static async ValueTask<bool> RunAsync(RequestScope scope)
    {
        var connection = scope.Connection;
        if (!scope.Decision.Allowed)
        {
            await scope.RefuseAsync().ConfigureAwait(false);
            return false;
        }

        var (outcome, addresses) = await scope.ResolveAsync().ConfigureAwait(false);
        if (outcome == ConnectOutcome.NotAllowed)
        {
            await scope.RefuseAsync().ConfigureAwait(false);
            return false;
        }

        if (outcome != ConnectOutcome.Connected)
        {
            var (status, reason) = Dialer.Failure(outcome);
            await scope.FailAsync(status, reason).ConfigureAwait(false);
            return false;
        }

        if (scope.Decision.Inspect)
        {
            // SPEC §7: TLS is terminated and every request inside is decided on its own. Without the
            // means to (a gate that asks for inspection on a proxy without a CA) it fails closed,
            // never as an opaque tunnel that would pass what the path rules were meant to judge.
            if (scope.Context.Inspection is not { } inspection)
            {
                await scope.FailAsync(503, ProxyReasons.InspectionUnavailable).ConfigureAwait(false);
                return false;
            }

            if (!inspection.Leaves.Authority.Permits(scope.Decision.Host))
            {
                // The CA's name constraints leave this host out: a leaf for it would be refused by
                // every client, so none is minted and the tunnel is refused, never passed opaque.
                await scope.FailAsync(503, ProxyReasons.InspectionNameNotPermitted).ConfigureAwait(false);
                return false;
            }

            return await InspectedTunnel.RunAsync(scope, addresses, inspection).ConfigureAwait(false);
        }

        ReadResult hello = default;
        var early = scope.RequiresSniCheck();
        if (early)
        {
            // The ClientHello comes only after the client is told the tunnel is open, and it is judged
            // before anything is dialed: so that answer goes first (naming the address about to be
            // dialed), and a dial failure after it can only close the tunnel (the record says which
            // failure). Name resolution and the guard have already answered above.
            await connection.SendEstablishedAsync(new IPEndPoint(addresses[0], scope.Decision.Port)).ConfigureAwait(false);
            if (await ReadClientHelloAsync(scope).ConfigureAwait(false) is not { } judged)
            {
                scope.RecordRefusal();
                return false;
            }

            hello = judged;
        }

        var dialed = await scope.DialAsync(addresses).ConfigureAwait(false);
        if (dialed != ConnectOutcome.Connected)
        {
            ReleaseHello(connection.Input, hello, early);
            var (status, reason) = Dialer.Failure(dialed);
            await scope.FailAsync(status, reason, answer: !early).ConfigureAwait(false);
            return false;
        }

        var upstream = connection.Upstream!;
        if (!await scope.RecordAllowedAsync(answer: !early).ConfigureAwait(false))
        {
            ReleaseHello(connection.Input, hello, early);
            return false;
        }

        if (!early)
        {
            await connection.SendEstablishedAsync(new IPEndPoint(upstream.Address, upstream.Port)).ConfigureAwait(false);
        }

        scope.ReleaseHead();
        scope.Established();
        connection.Clock.Enter(ConnectionPhase.Tunnel);
        if (!early && scope.AwaitsServer)
        {
            switch (await ClientSpeaksFirstAsync(scope, upstream).ConfigureAwait(false))
            {
                case true:
                    // Nothing crossed the tunnel: the connection goes on as one whose client spoke first.
                    scope.SetCloseReason(ProxyReasons.ClientSpokeFirst);
                    return true;
                case null:
                    scope.SetCloseReason(RequestScope.CloseReasonOf(connection));
                    return false;
            }
        }

        // A client that waited for its server has its first bytes judged in the relay, before they go.
        var late = !early && scope.DefersSniCheck();
        if (!late && !await RelayBufferedAsync(scope, upstream, hello, early).ConfigureAwait(false))
        {
            scope.SetCloseReason(RequestScope.CloseReasonOf(connection));
            return false;
        }

        var clean = await RelayBothWaysAsync(scope, upstream, late).ConfigureAwait(false);
        scope.SetCloseReason(connection.IsAborted || !clean ? RequestScope.CloseReasonOf(connection) : ProxyReasons.Closed);
        return false;
    }

    /// <summary>
    /// An inspected exchange the origin switched to another protocol (<c>101</c>, SPEC §7): from here
    /// the request is a relay like a tunnel's, its bytes charged to the egress budget on the way up and
    /// rechecked by the heartbeat, until both directions end. Bytes either side sent right behind the
    /// heads go first.
    /// </summary>
    public static async Task RelayUpgradedAsync(RequestScope scope, Upstream upstream)
    {
        var connection = scope.Connection;
        connection.Clock.Enter(ConnectionPhase.Tunnel);
        try
        {
            var fromOrigin = upstream.Transport.Input;
            if (fromOrigin.TryRead(out var early))
            {
                if (!early.Buffer.IsEmpty)
                {
                    await scope.SendDownstreamAsync(early.Buffer).ConfigureAwait(false);
                }

                fromOrigin.AdvanceTo(early.Buffer.End);
            }

            upstream.Transport.DropInput();
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
            connection.Abort(TimeoutKind.None);
        }

        if (connection.IsAborted || !await RelayBufferedAsync(scope, upstream, default, isHeld: false).ConfigureAwait(false))
        {
            scope.SetCloseReason(RequestScope.CloseReasonOf(connection));
            return;
        }

        var clean = await RelayBothWaysAsync(scope, upstream, judgeFirstBytes: false).ConfigureAwait(false);
        scope.SetCloseReason(connection.IsAborted || !clean ? RequestScope.CloseReasonOf(connection) : ProxyReasons.Closed);
    }

    /// <summary>
    /// Reads the client's first bytes without consuming them until the gate can judge them (a whole
    /// ClientHello, reassembled across records), under the header timeout. On a pass the bytes are
    /// still held in the pipe, to be relayed once the upstream is dialed; null when refused.
    /// </summary>
    [AsyncMethodBuilder(typeof(PooledValueTaskBuilder<>))]
    private static async ValueTask<ReadResult?> ReadClientHelloAsync(RequestScope scope)
    {
        var connection = scope.Connection;
        var input = connection.Input;
        connection.Clock.Enter(ConnectionPhase.ReadingHead);
        while (true)
        {
            var result = await input.ReadAsync().ConfigureAwait(false);
            var buffer = result.Buffer;
            var end = result.IsCanceled || connection.IsAborted
                ? (connection.Clock.Fired == TimeoutKind.Header ? ClientHelloEnd.TimedOut : ClientHelloEnd.Eof)
                : result.IsCompleted ? ClientHelloEnd.Eof : ClientHelloEnd.Open;
            if (connection.IsAborted)
            {
                input.AdvanceTo(buffer.Start, buffer.End);
                return null;
            }

            var verdict = scope.CheckClientHello(buffer, end);
            if (verdict == SniVerdict.Pass)
            {
                connection.Clock.Enter(ConnectionPhase.Busy);
                return result;
            }

            input.AdvanceTo(buffer.Start, buffer.End);
            if (verdict == SniVerdict.Refuse || end != ClientHelloEnd.Open)
            {
                return null;
            }
        }
    }

    private static void ReleaseHello(PipeReader input, in ReadResult hello, bool held)
    {
        if (held)
        {
            input.AdvanceTo(hello.Buffer.End);
        }
    }

    /// <summary>
    /// Relays what the client sent before the tunnel began (the judged ClientHello, or bytes right
    /// behind the request) through the scope's upstream send, then leaves the pipe: from here the two
    /// transports are relayed directly.
    /// </summary>
    [AsyncMethodBuilder(typeof(PooledValueTaskBuilder<>))]
    private static async ValueTask<bool> RelayBufferedAsync(RequestScope scope, Upstream upstream, ReadResult held, bool isHeld)
    {
        var input = scope.Connection.Input;
        var result = held;
        if (!isHeld && !input.TryRead(out result))
        {
            return true;
        }

        var buffer = result.Buffer;
        try
        {
            if (!buffer.IsEmpty && !await scope.SendUpstreamAsync(buffer).ConfigureAwait(false))
            {
                input.AdvanceTo(buffer.End);
                scope.Connection.Revoke(Policy.Reasons.EgressBudget);
                return false;
            }

            input.AdvanceTo(buffer.End);
            if (result.IsCompleted)
            {
                await upstream.Transport.ShutdownSendAsync().ConfigureAwait(false);
            }

            return !result.IsCanceled;
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
            scope.Connection.Abort(TimeoutKind.None);
            return false;
        }
    }

    /// <summary>
    /// Both directions at once, and both are waited for whatever happens, so the scope's exit never runs
    /// while a pump still moves bytes. No task per direction: the pumps are pooled value tasks.
    /// </summary>
    /// <returns>True when both directions ended with an orderly EOF.</returns>
    /// <param name="judgeFirstBytes">The client's first bytes are a deferred ClientHello check's (<see cref="RequestScope.DefersSniCheck"/>):
    /// the way down runs meanwhile (the server speaks first), the way up only once they passed.</param>
    [AsyncMethodBuilder(typeof(PooledValueTaskBuilder<>))]
    private static async ValueTask<bool> RelayBothWaysAsync(RequestScope scope, Upstream upstream, bool judgeFirstBytes)
    {
        var client = scope.Connection.Transport;
        var down = PumpAsync(scope, upstream.Transport, client, upstream: false);
        var clean = false;
        try
        {
            clean = (!judgeFirstBytes || await JudgeFirstBytesAsync(scope, upstream).ConfigureAwait(false))
                && await PumpAsync(scope, client, upstream.Transport, upstream: true).ConfigureAwait(false);
        }
        finally
        {
            clean &= await down.ConfigureAwait(false);
        }

        return clean;
    }

    /// <summary>
    /// A client silent for <c>Transparent:FirstBytesMs</c> was taken for one whose server speaks first
    /// (SPEC §10) and its tunnel dialed. Which side speaks first settles it: the server (a server-first
    /// protocol: the relay runs), or the client with bytes while the server has said nothing: then it
    /// was only slow, or paused on purpose, and its bytes are judged as any client's that spoke first
    /// (an HTTP request decided with its path, a ClientHello by its SNI), never relayed unjudged through
    /// the tunnel silence opened. Neither wait takes a byte; the one that loses is cancelled, which is
    /// an exception inside the socket layer, once per silent connection.
    /// </summary>
    /// <returns>True: the client spoke first; false: the server did (or the client only closed); null: the connection ended.</returns>
    private static async Task<bool?> ClientSpeaksFirstAsync(RequestScope scope, Upstream upstream)
    {
        var client = scope.Connection.Transport;
        using var clientWait = new CancellationTokenSource();
        using var serverWait = new CancellationTokenSource();
        var fromClient = client.ReceiveAsync(Memory<byte>.Empty, clientWait.Token).AsTask();
        var fromServer = upstream.Transport.ReceiveAsync(Memory<byte>.Empty, serverWait.Token).AsTask();
        await Task.WhenAny(fromClient, fromServer).ConfigureAwait(false);
        // The server's word wins a tie: a server that has spoken is a server-first protocol's.
        var clientFirst = fromClient.IsCompletedSuccessfully && !fromServer.IsCompleted && client.HasBytes();
        await clientWait.CancelAsync().ConfigureAwait(false);
        await serverWait.CancelAsync().ConfigureAwait(false);
        await ((Task)fromClient).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        await ((Task)fromServer).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        return scope.Connection.IsAborted ? null : clientFirst;
    }

    /// <summary>
    /// The deferred ClientHello check: waits for the client's first bytes (in the tunnel's idle clock,
    /// as any tunnel byte), judges them as the tunnel sequence judges a ClientHello before it dials, and
    /// relays them only when they pass; bytes that are not TLS pass, as on any port but 443. A refusal
    /// closes the tunnel with its reason (the decision is already recorded) before one byte goes up.
    /// </summary>
    /// <returns>False when the hello was refused or the connection ended first.</returns>
    [AsyncMethodBuilder(typeof(PooledValueTaskBuilder<>))]
    private static async ValueTask<bool> JudgeFirstBytesAsync(RequestScope scope, Upstream upstream)
    {
        var connection = scope.Connection;
        var input = connection.Input;
        try
        {
            while (true)
            {
                var result = await input.ReadAsync().ConfigureAwait(false);
                var buffer = result.Buffer;
                if (result.IsCanceled || connection.IsAborted)
                {
                    input.AdvanceTo(buffer.Start, buffer.End);
                    return false;
                }

                var verdict = scope.CheckLateClientHello(buffer, result.IsCompleted ? ClientHelloEnd.Eof : ClientHelloEnd.Open, out var reason);
                if (verdict == SniVerdict.NeedMore)
                {
                    input.AdvanceTo(buffer.Start, buffer.End);
                    continue;
                }

                if (verdict == SniVerdict.Refuse)
                {
                    input.AdvanceTo(buffer.End);
                    connection.Revoke(reason);
                    return false;
                }

                // Left unexamined: the buffered relay sends exactly these bytes on first.
                input.AdvanceTo(buffer.Start);
                return await RelayBufferedAsync(scope, upstream, default, isHeld: false).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
            connection.Abort(TimeoutKind.None);
            return false;
        }
    }

    /// <returns>True when this direction ended with an orderly EOF.</returns>
    [AsyncMethodBuilder(typeof(PooledValueTaskBuilder<>))]
    private static async ValueTask<bool> PumpAsync(RequestScope scope, Transport from, Transport to, bool upstream)
    {
        try
        {
            while (true)
            {
                // Wait for readability with no buffer: this is where an idle tunnel spends its life.
                await from.ReceiveAsync(Memory<byte>.Empty).ConfigureAwait(false);
                var buffer = ArrayPool<byte>.Shared.Rent(BufferBytes);
                try
                {
                    var n = await from.ReceiveAsync(buffer.AsMemory()).ConfigureAwait(false);
                    if (n == 0)
                    {
                        await to.ShutdownSendAsync().ConfigureAwait(false);
                        return true;
                    }

                    if (upstream)
                    {
                        if (!await scope.SendUpstreamAsync(buffer.AsMemory(0, n)).ConfigureAwait(false))
                        {
                            scope.Connection.Revoke(Policy.Reasons.EgressBudget);
                            return false;
                        }
                    }
                    else
                    {
                        await scope.SendDownstreamAsync(buffer.AsMemory(0, n)).ConfigureAwait(false);
                    }
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
            scope.Connection.Abort(TimeoutKind.None);
            return false;
        }
    }
}
