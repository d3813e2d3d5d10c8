using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using ChronoGuard.Http;
using ChronoGuard.Net;
using ChronoGuard.Policy;

namespace ChronoGuard.Proxy;

/// <summary>
/// The plain-HTTP front end: decide, reuse the kept upstream (after the guard accepts its address
/// again) or dial, record, then one exchange: the rewritten head and the body go up while the
/// response comes back, each relayed as it arrives.
/// </summary>
internal static class HttpForwarder
{
    private static readonly TimeSpan BodyGrace = TimeSpan.FromSeconds(2);

    // Copying this much behind a head costs less than the second send it saves (a 16 KiB copy is a
    // few hundred nanoseconds; a send to loopback is microseconds and a segment for the peer).
    private const int MaxCoalescedBodyBytes = 16 * 1024;

    private enum Exchange
    {
        /// <summary>Both sides may carry another request.</summary>
        KeepAlive,

        /// <summary>The client may go on; the upstream must close.</summary>
        KeepClientOnly,

        /// <summary>The response was relayed but the client connection must close.</summary>
        Close,

        /// <summary>
        /// The client connection must close, the upstream may go on: for an inspected request its
        /// upstream then waits in the pool for the agent's next tunnel (a client that closes after each
        /// request still costs one TLS handshake per tunnel, not two).
        /// </summary>
        KeepUpstreamOnly,

        /// <summary>The upstream closed or failed before any response byte arrived.</summary>
        StaleUpstream,

        /// <summary>The upstream sent something that is not an HTTP/1.x response; nothing was relayed.</summary>
        BadResponse,

        /// <summary>Failed midway through the response; nothing more can be sent.</summary>
        Broken,

        /// <summary>The request body failed on the client's side (framing, timeout, budget, reset).</summary>
        BodyFailed,

        /// <summary>The origin switched protocols (inspected requests only): the connection becomes a relay.</summary>
        Upgraded,
    }

    /// <returns>True when the client connection may carry another request.</returns>
    [AsyncMethodBuilder(typeof(PooledValueTaskBuilder<>))]
    public static async ValueTask<bool> RunAsync(RequestScope scope)
    {
        var connection = scope.Connection;
        var head = scope.Head;
        var kept = connection.Upstream;
        var sameAuthority = kept is not null && kept.Serves(head.Span(head.TargetHost), head.TargetPort);
        if (!scope.Decision.Allowed)
        {
            return await scope.RefuseAsync().ConfigureAwait(false);
        }

        // A kept upstream is judged again: the policy may have changed since it was dialed.
        var reused = sameAuthority && scope.MayReuse(kept!.Address);
        if (reused)
        {
            scope.Decision.Dialed = kept!.Address;
        }
        else
        {
            connection.DropUpstream();
            if (!await DialAsync(scope, recorded: false).ConfigureAwait(false))
            {
                return false;
            }
        }

        if (!await scope.RecordAllowedAsync().ConfigureAwait(false))
        {
            return false;
        }

        scope.Established();
        var hasBody = head.Chunked || head.ContentLength > 0;
        var (result, body, finalSent) = await ExchangeAsync(scope, connection.Upstream!, hasBody).ConfigureAwait(false);
        if (result == Exchange.StaleUpstream && reused && !hasBody)
        {
            // A reused keep-alive upstream may have closed just before we wrote: retry once on a fresh
            // connection. Only without a request body, which cannot be replayed.
            connection.DropUpstream();
            if (!await DialAsync(scope, recorded: true).ConfigureAwait(false))
            {
                return false;
            }

            (result, body, finalSent) = await ExchangeAsync(scope, connection.Upstream!, hasBody).ConfigureAwait(false);
        }

        switch (result)
        {
            case Exchange.KeepAlive:
                scope.KeepUpstream();
                scope.SetCloseReason(ProxyReasons.Complete);
                return !connection.IsAborted;
            case Exchange.KeepClientOnly:
                scope.SetCloseReason(ProxyReasons.Complete);
                return !connection.IsAborted;
            case Exchange.KeepUpstreamOnly:
                scope.KeepUpstream();
                scope.SetCloseReason(connection.IsAborted ? RequestScope.CloseReasonOf(connection) : ProxyReasons.Closed);
                return false;
            case Exchange.BodyFailed:
                await RefuseBodyAsync(scope, body, finalSent).ConfigureAwait(false);
                return false;
            case Exchange.Upgraded:
                await TunnelRelay.RelayUpgradedAsync(scope, connection.Upstream!).ConfigureAwait(false);
                return false;
            case Exchange.StaleUpstream or Exchange.BadResponse when !connection.IsAborted && !finalSent:
                await scope.FailAsync(502, result == Exchange.BadResponse ? ProxyReasons.BadUpstreamResponse : ProxyReasons.UpstreamClosed).ConfigureAwait(false);
                return false;
            default:
                scope.SetCloseReason(connection.IsAborted ? RequestScope.CloseReasonOf(connection) : ProxyReasons.Closed);
                return false;
        }
    }

    /// <summary>Resolves, guards and dials; on failure the client has been answered.</summary>
    [AsyncMethodBuilder(typeof(PooledValueTaskBuilder<>))]
    private static async ValueTask<bool> DialAsync(RequestScope scope, bool recorded)
    {
        var (outcome, addresses) = await scope.ResolveAsync().ConfigureAwait(false);
        if (outcome == ConnectOutcome.NotAllowed && !recorded)
        {
            await scope.RefuseAsync().ConfigureAwait(false);
            return false;
        }

        if (outcome == ConnectOutcome.Connected)
        {
            outcome = await scope.DialAsync(addresses).ConfigureAwait(false);
        }

        if (outcome != ConnectOutcome.Connected)
        {
            var (status, reason) = outcome == ConnectOutcome.NotAllowed ? (403, scope.Decision.Result.Reason) : Dialer.Failure(outcome);
            await scope.FailAsync(status, reason).ConfigureAwait(false);
            return false;
        }

        return true;
    }

    /// <summary>The request body failed on the client's side: answer if the response has not begun, audited.</summary>
    private static Task RefuseBodyAsync(RequestScope scope, BodyResult body, bool finalSent)
    {
        var connection = scope.Connection;
        if (finalSent || connection.IsAborted)
        {
            scope.SetCloseReason(connection.IsAborted ? RequestScope.CloseReasonOf(connection) : ProxyReasons.ClientClosed);
            return Task.CompletedTask;
        }

        return body.Outcome switch
        {
            BodyOutcome.BadFraming => scope.RefuseProtocolAsync(ParseErrors.StatusCode(body.Error), "DENY", ParseErrors.Reason(body.Error)),
            BodyOutcome.Cancelled when connection.Clock.Fired == TimeoutKind.Body => scope.RefuseProtocolAsync(408, "DENY", ProxyReasons.BodyTimeout),
            BodyOutcome.BudgetSpent => scope.RefuseProtocolAsync(429, DecisionNames.Name(Decision.RateLimited), Reasons.EgressBudget),
            _ => SetClosed(scope),
        };

        static Task SetClosed(RequestScope scope)
        {
            scope.SetCloseReason(ProxyReasons.ClientClosed);
            return Task.CompletedTask;
        }
    }

    [AsyncMethodBuilder(typeof(PooledValueTaskBuilder<>))]
    private static async ValueTask<(Exchange Result, BodyResult Body, bool FinalSent)> ExchangeAsync(RequestScope scope, Upstream upstream, bool hasBody)
    {
        var connection = scope.Connection;
        var request = scope.Head;
        var response = scope.ResponseHead;
        var scratch = scope.Scratch;
        var finalSent = false;
        Task<BodyResult> body = Task.FromResult(BodyResult.Done);
        try
        {
            // An inspected request may switch protocols (SPEC §7); a plain forward never relays an upgrade.
            var upgrade = scope.FrontEnd == FrontEnd.Inspected && request.ConnectionUpgrade && request.Upgrade.Length > 0 && !hasBody;
            var n = scope.Injects is { } credential
                ? RequestRewriter.Write(request, scratch, credential.HeaderName, credential.HeaderValue, upgrade)
                : RequestRewriter.Write(request, scratch, upgrade: upgrade);
            if (!await scope.SendUpstreamAsync(scratch.AsMemory(0, n)).ConfigureAwait(false))
            {
                return (Exchange.BodyFailed, new BodyResult(BodyOutcome.BudgetSpent), false);
            }
            if (hasBody)
            {
                // Concurrently with reading the response: an origin may answer (or send 100 Continue)
                // before it has read the whole body, and the client may be waiting for that answer.
                body = CopyRequestBodyAsync(scope, upstream);
            }

            while (true)
            {
                var (status, sawBytes) = await ReadResponseHeadAsync(upstream.Transport.Input, response).ConfigureAwait(false);
                if (status != HeadStatus.Complete)
                {
                    var failed = await AbandonBodyAsync(scope, upstream, body).ConfigureAwait(false);
                    if (IsClientSide(failed))
                    {
                        return (Exchange.BodyFailed, failed, false);
                    }

                    return (sawBytes || status == HeadStatus.Error ? Exchange.BadResponse : Exchange.StaleUpstream, failed, false);
                }

                if (response.StatusCode is >= 100 and < 200)
                {
                    if (response.StatusCode == 101)
                    {
                        if (upgrade && response.Upgrade.Length > 0)
                        {
                            var switched = ResponseRewriter.WriteUpgrade(response, scratch);
                            await scope.SendDownstreamAsync(scratch.AsMemory(0, switched)).ConfigureAwait(false);
                            return (Exchange.Upgraded, BodyResult.Done, true);
                        }

                        await AbandonBodyAsync(scope, upstream, body).ConfigureAwait(false);
                        return (Exchange.BadResponse, BodyResult.Done, false);
                    }

                    // Interim responses (100 Continue, 103 Early Hints) go to the client rewritten like a
                    // final one: an origin's phrase and X-ChronoGuard-* headers stop here too.
                    if (request.VersionMinor >= 1)
                    {
                        var interim = ResponseRewriter.WriteInterim(response, scratch);
                        await scope.SendDownstreamAsync(scratch.AsMemory(0, interim)).ConfigureAwait(false);
                    }

                    continue;
                }

                break;
            }

            var noBody = request.IsHead || response.StatusCode is 204 or 304;
            var framed = noBody || response.Chunked || response.ContentLength >= 0;
            var keepClient = request.KeepAlive && framed && !connection.IsDraining;
            var headLength = ResponseRewriter.Write(response, request, keepClient, scratch);
            var from = upstream.Transport.Input;
            var remaining = noBody ? 0 : response.ContentLength;
            var sendLength = headLength + (response.Chunked ? 0 : TakeBufferedBody(from, scratch.AsSpan(headLength), ref remaining));
            await scope.SendDownstreamAsync(scratch.AsMemory(0, sendLength)).ConfigureAwait(false);
            finalSent = true;

            var client = new ClientSink(scope);
            var copied = noBody ? BodyResult.Done
                : response.Chunked ? await BodyCopier.CopyChunkedAsync(from, client).ConfigureAwait(false)
                : remaining == 0 ? BodyResult.Done
                : remaining > 0 ? await BodyCopier.CopyExactAsync(from, client, remaining).ConfigureAwait(false)
                : await BodyCopier.CopyToEndAsync(from, client).ConfigureAwait(false);
            if (!copied.IsComplete)
            {
                var failed = await AbandonBodyAsync(scope, upstream, body).ConfigureAwait(false);
                return (framed ? Exchange.Broken : Exchange.Close, failed, true);
            }

            if (!body.IsCompleted)
            {
                // Usually the last body bytes are sent and only the copy's continuation is pending;
                // an origin that answered early (413, 401) may never read the rest. Give it a moment.
                await Task.WhenAny(body, Task.Delay(BodyGrace, scope.Context.Time)).ConfigureAwait(false);
            }

            if (!body.IsCompleted)
            {
                // The client's next bytes are still body, so neither connection can be reused.
                await AbandonBodyAsync(scope, upstream, body).ConfigureAwait(false);
                return (Exchange.Close, BodyResult.Done, true);
            }

            var sent = await body.ConfigureAwait(false);
            if (!sent.IsComplete)
            {
                return (Exchange.Broken, sent, true);
            }

            var keepUpstream = response.KeepAlive && framed;
            return (keepClient ? (keepUpstream ? Exchange.KeepAlive : Exchange.KeepClientOnly) : keepUpstream ? Exchange.KeepUpstreamOnly : Exchange.Close, sent, true);
        }
        catch (Exception ex) when (BodyCopier.IsIoFailure(ex))
        {
            var failed = await AbandonBodyAsync(scope, upstream, body).ConfigureAwait(false);
            return (finalSent ? Exchange.Broken : IsClientSide(failed) ? Exchange.BodyFailed : Exchange.StaleUpstream, failed, finalSent);
        }
    }

    /// <summary>Failures of the client's body, which the upstream did not cause.</summary>
    private static bool IsClientSide(BodyResult body) =>
        body.Outcome is BodyOutcome.BadFraming or BodyOutcome.Cancelled or BodyOutcome.BudgetSpent or BodyOutcome.SourceEnded or BodyOutcome.SourceFailed;

    /// <summary>
    /// The request body, client to upstream. When it fails on the client's side (bad framing, body
    /// timeout, spent budget, reset) the upstream is aborted at once, so the exchange waiting for the
    /// response ends now instead of when the origin gives up.
    /// </summary>
    private static async Task<BodyResult> CopyRequestBodyAsync(RequestScope scope, Upstream upstream)
    {
        var connection = scope.Connection;
        var head = scope.Head;
        connection.Clock.Enter(ConnectionPhase.ReadingBody);
        var sink = new UpstreamSink(scope);
        var result = head.Chunked
            ? await BodyCopier.CopyChunkedAsync(connection.Input, sink).ConfigureAwait(false)
            : await BodyCopier.CopyExactAsync(connection.Input, sink, head.ContentLength).ConfigureAwait(false);
        if (IsClientSide(result))
        {
            upstream.Abort();
        }

        connection.Clock.Enter(ConnectionPhase.Busy);
        return result;
    }

    /// <summary>Ends a body copy still running (it reads the client) and waits for it, so no one else reads the client pipe concurrently.</summary>
    private static async Task<BodyResult> AbandonBodyAsync(RequestScope scope, Upstream upstream, Task<BodyResult> body)
    {
        if (!body.IsCompleted)
        {
            upstream.Abort();
            scope.Connection.Input.CancelPendingRead();
        }

        try
        {
            return await body.ConfigureAwait(false);
        }
        catch (Exception ex) when (BodyCopier.IsIoFailure(ex))
        {
            return new BodyResult(BodyOutcome.SinkFailed);
        }
    }

    /// <summary>
    /// Moves the part of a <c>Content-Length</c> body that arrived with the response head into
    /// <paramref name="room"/>, behind the rewritten head, so one send carries both: a small response
    /// costs one syscall and one segment to the client instead of two (perf/tunnel-ab forward … trace).
    /// Only bytes already buffered are taken (no read is issued); <paramref name="remaining"/> drops by
    /// what was taken. Chunked bodies are left to the copier, which checks their framing.
    /// </summary>
    private static int TakeBufferedBody(PipeReader from, Span<byte> room, ref long remaining)
    {
        if (remaining <= 0 || !from.TryRead(out var early))
        {
            return 0;
        }

        var buffer = early.Buffer;
        var take = (int)Math.Min(Math.Min(remaining, buffer.Length), Math.Min(room.Length, MaxCoalescedBodyBytes));
        if (early.IsCanceled || take <= 0)
        {
            // A cancelled read is an abort in progress: leave it to the copier, whose read sees the
            // disposed transport and ends the exchange as broken.
            from.AdvanceTo(buffer.Start);
            return 0;
        }

        buffer.Slice(0, take).CopyTo(room);
        from.AdvanceTo(buffer.GetPosition(take));
        remaining -= take;
        return take;
    }

    [AsyncMethodBuilder(typeof(PooledValueTaskBuilder<>))]
    private static async ValueTask<(HeadStatus Status, bool SawBytes)> ReadResponseHeadAsync(PipeReader input, HttpHead response)
    {
        response.Reset();
        while (true)
        {
            var result = await input.ReadAsync().ConfigureAwait(false);
            var buffer = result.Buffer;
            if (result.IsCanceled)
            {
                input.AdvanceTo(buffer.Start, buffer.End);
                return (HeadStatus.Incomplete, response.Length > 0 || !buffer.IsEmpty);
            }

            var status = HeadReader.TryRead(buffer, response, out var end, out _);
            if (status == HeadStatus.Complete)
            {
                input.AdvanceTo(end);
                return HttpHeadParser.ParseResponse(response) == ParseError.None ? (HeadStatus.Complete, true) : (HeadStatus.Error, true);
            }

            if (status == HeadStatus.Error)
            {
                input.AdvanceTo(buffer.Start, buffer.End);
                return (HeadStatus.Error, true);
            }

            input.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted)
            {
                return (HeadStatus.Incomplete, !buffer.IsEmpty);
            }
        }
    }
}
