using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Text;
using ChronoGuard.Http;

namespace ChronoGuard.Proxy;

internal sealed partial class ProxyConnection
{
    private const int MaxResponseHeadBytes = 64 * 1024;
    private const int MaxResponseHeaders = 256;
    private const int RewriteSlack = 1024;
    private const int BodyGraceMs = 2000;

    private HttpHead? _response;
    private byte[]? _scratch;
    private byte[]? _upstreamKey;
    private string? _upstreamHost;
    private int _upstreamPort;

    /// <returns>True when the client connection may carry another request.</returns>
    private async Task<bool> ForwardAsync()
    {
        var head = _head;
        var hostBytes = head.Span(head.TargetHost);
        var sameAuthority = _upstreamKey is not null && _upstreamPort == head.TargetPort && Ascii.EqualsIgnoreCase(hostBytes, _upstreamKey);
        _verdict = new Verdict
        {
            Host = sameAuthority ? _upstreamHost! : Encoding.ASCII.GetString(hostBytes),
            Port = head.TargetPort,
            AuditSeq = -1,
            Dialed = sameAuthority ? _verdict.Dialed : null,
        };
        _bytesUp = 0;
        _bytesDown = 0;
        _context.Hooks.Decide(this, head, ref _verdict);
        if (!_verdict.Allowed)
        {
            await RecordAndRefuseAsync(_verdict.Refusal).ConfigureAwait(false);
            return false;
        }

        var reused = sameAuthority && _upstream is not null;
        if (!reused && !await OpenForwardUpstreamAsync().ConfigureAwait(false))
        {
            return false;
        }

        _context.Hooks.Record(this, head, ref _verdict, 200);
        await _context.Hooks.WaitDurableAsync(_verdict.AuditSeq).ConfigureAwait(false);
        var started = Environment.TickCount64;
        _scratch ??= ArrayPool<byte>.Shared.Rent(Math.Max(_context.Options.MaxHeaderBytes, MaxResponseHeadBytes) + RewriteSlack);
        _response ??= new HttpHead(MaxResponseHeadBytes, MaxResponseHeaders);
        var hasBody = head.Chunked || head.ContentLength > 0;

        var result = await ExchangeAsync(hasBody).ConfigureAwait(false);
        if (result == ExchangeResult.StaleUpstream && reused && !hasBody)
        {
            // A reused keep-alive upstream may have closed just before we wrote: retry once on a fresh
            // connection. Only without a request body, which cannot be replayed.
            CloseUpstream();
            if (!await OpenForwardUpstreamAsync().ConfigureAwait(false))
            {
                return false;
            }

            result = await ExchangeAsync(hasBody).ConfigureAwait(false);
        }

        if (result is ExchangeResult.StaleUpstream or ExchangeResult.BadResponse)
        {
            CloseUpstream();
            if (!IsAborted)
            {
                var reason = result == ExchangeResult.BadResponse ? "bad_upstream_response" : "upstream_closed";
                await RefuseAsync(new Refusal(502, "ALLOW", reason) { AuditSeq = _verdict.AuditSeq }, audit: false).ConfigureAwait(false);
            }
        }

        var keepClient = result == ExchangeResult.KeepAlive || result == ExchangeResult.KeepClientOnly;
        if (result != ExchangeResult.KeepAlive)
        {
            CloseUpstream();
        }

        _context.Hooks.OnClosed(this, _verdict, _bytesUp, _bytesDown, Environment.TickCount64 - started, keepClient ? "complete" : "closed");
        return keepClient && !IsAborted;
    }

    private async ValueTask<bool> OpenForwardUpstreamAsync()
    {
        CloseUpstream();
        _upstreamKey = null;
        var outcome = await DialAsync().ConfigureAwait(false);
        if (outcome != ConnectOutcome.Connected)
        {
            if (outcome != ConnectOutcome.NotAllowed)
            {
                await RecordAndRefuseAsync(UpstreamRefusal(outcome)).ConfigureAwait(false);
            }

            return false;
        }

        _upstreamKey = Encoding.ASCII.GetBytes(_verdict.Host);
        _upstreamHost = _verdict.Host;
        _upstreamPort = _verdict.Port;
        return true;
    }

    private enum ExchangeResult
    {
        /// <summary>Both sides may carry another request.</summary>
        KeepAlive,

        /// <summary>The client may go on; the upstream must close (it will not carry another response).</summary>
        KeepClientOnly,

        /// <summary>The response was relayed but the client connection must close.</summary>
        Close,

        /// <summary>The upstream closed or failed before any response byte arrived.</summary>
        StaleUpstream,

        /// <summary>The upstream sent something that is not an HTTP/1.x response; nothing was relayed.</summary>
        BadResponse,

        /// <summary>Failed midway through the response; nothing more can be sent.</summary>
        Broken,
    }

    private async Task<ExchangeResult> ExchangeAsync(bool hasBody)
    {
        var upstream = _upstream!;
        var upInput = _upstreamInput!;
        var response = _response!;
        var headSent = false;
        Task<bool> body = Task.FromResult(true);
        try
        {
            var n = RequestRewriter.Write(_head, _scratch!);
            await SocketSend.SendAllAsync(upstream, _scratch.AsMemory(0, n)).ConfigureAwait(false);
            Touch();
            if (hasBody)
            {
                // Concurrently with reading the response: an origin may answer (or send 100 Continue)
                // before it has read the whole body, and the client may be waiting for that answer.
                body = CopyRequestBodyAsync(upstream);
            }

            while (true)
            {
                var (status, sawBytes) = await ReadResponseHeadAsync(upInput, response).ConfigureAwait(false);
                if (status != HeadStatus.Complete)
                {
                    await AbandonBodyAsync(body).ConfigureAwait(false);
                    return sawBytes || status == HeadStatus.Error ? ExchangeResult.BadResponse : ExchangeResult.StaleUpstream;
                }

                if (response.StatusCode is >= 100 and < 200)
                {
                    if (response.StatusCode == 101)
                    {
                        await AbandonBodyAsync(body).ConfigureAwait(false);
                        return ExchangeResult.BadResponse;
                    }

                    // Interim responses (100 Continue, 103 Early Hints) go to the client as they are.
                    if (_head.VersionMinor >= 1)
                    {
                        await SocketSend.SendAllAsync(_client, response.Buffer.AsMemory(0, response.Length)).ConfigureAwait(false);
                        headSent = true;
                    }

                    continue;
                }

                break;
            }

            var noBody = _head.IsHead || response.StatusCode is 204 or 304;
            var framed = noBody || response.Chunked || response.ContentLength >= 0;
            var keepClient = _head.KeepAlive && framed && !_server.IsDraining;
            var headLength = ResponseRewriter.Write(response, _head, keepClient, _scratch!);
            await SocketSend.SendAllAsync(_client, _scratch.AsMemory(0, headLength)).ConfigureAwait(false);
            headSent = true;
            Interlocked.Add(ref _bytesDown, headLength);

            bool complete;
            if (noBody)
            {
                complete = true;
            }
            else if (response.Chunked)
            {
                complete = await CopyChunkedAsync(upInput, _client, upstream: false).ConfigureAwait(false);
            }
            else if (response.ContentLength >= 0)
            {
                complete = await CopyExactAsync(upInput, _client, response.ContentLength, upstream: false).ConfigureAwait(false);
            }
            else
            {
                await CopyToEndAsync(upInput, _client).ConfigureAwait(false);
                complete = false;
            }

            if (!complete)
            {
                await AbandonBodyAsync(body).ConfigureAwait(false);
                return framed ? ExchangeResult.Broken : ExchangeResult.Close;
            }

            if (!body.IsCompleted)
            {
                // Usually the last body bytes are sent and only the copy's continuation is pending;
                // an origin that answered early (413, 401) may never read the rest. Give it a moment.
                await Task.WhenAny(body, Task.Delay(BodyGraceMs)).ConfigureAwait(false);
            }

            if (!body.IsCompleted)
            {
                // The client's next bytes are still body, so neither connection can be reused.
                await AbandonBodyAsync(body).ConfigureAwait(false);
                return ExchangeResult.Close;
            }

            if (!await body.ConfigureAwait(false))
            {
                return ExchangeResult.Broken;
            }

            var keepUpstream = response.KeepAlive && framed;
            return keepClient ? (keepUpstream ? ExchangeResult.KeepAlive : ExchangeResult.KeepClientOnly) : ExchangeResult.Close;
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or InvalidOperationException)
        {
            await AbandonBodyAsync(body).ConfigureAwait(false);
            return headSent ? ExchangeResult.Broken : ExchangeResult.StaleUpstream;
        }
    }

    private async Task AbandonBodyAsync(Task<bool> body)
    {
        if (!body.IsCompleted)
        {
            // The body copy reads the client: end it by closing the upstream it writes to and
            // cancelling its read, then wait so no one else touches the client pipe concurrently.
            AbortUpstream();
            _input.CancelPendingRead();
            try
            {
                await body.ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or InvalidOperationException)
            {
            }
        }
    }

    private async Task<bool> CopyRequestBodyAsync(Socket upstream)
    {
        try
        {
            return _head.Chunked
                ? await CopyChunkedAsync(_input, upstream, upstream: true).ConfigureAwait(false)
                : await CopyExactAsync(_input, upstream, _head.ContentLength, upstream: true).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or InvalidOperationException)
        {
            return false;
        }
    }

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

    private async ValueTask<bool> CopyExactAsync(PipeReader from, Socket to, long length, bool upstream)
    {
        while (length > 0)
        {
            var result = await from.ReadAsync().ConfigureAwait(false);
            var buffer = result.Buffer;
            if (result.IsCanceled)
            {
                from.AdvanceTo(buffer.Start, buffer.End);
                return false;
            }

            var chunk = buffer.Length > length ? buffer.Slice(0, length) : buffer;
            if (!chunk.IsEmpty)
            {
                await SocketSend.SendAllAsync(to, chunk).ConfigureAwait(false);
                Count(chunk.Length, upstream);
                length -= chunk.Length;
            }

            from.AdvanceTo(chunk.End);
            if (length > 0 && result.IsCompleted)
            {
                return false;
            }
        }

        return true;
    }

    private async ValueTask<bool> CopyChunkedAsync(PipeReader from, Socket to, bool upstream)
    {
        var scanner = default(ChunkedScanner);
        while (!scanner.IsDone)
        {
            var result = await from.ReadAsync().ConfigureAwait(false);
            var buffer = result.Buffer;
            if (result.IsCanceled)
            {
                from.AdvanceTo(buffer.Start, buffer.End);
                return false;
            }

            var error = scanner.Scan(buffer, out var consumed);
            var chunk = buffer.Slice(0, consumed);
            if (error != ParseError.None)
            {
                from.AdvanceTo(chunk.End);
                return false;
            }

            if (!chunk.IsEmpty)
            {
                await SocketSend.SendAllAsync(to, chunk).ConfigureAwait(false);
                Count(chunk.Length, upstream);
            }

            from.AdvanceTo(chunk.End);
            if (!scanner.IsDone && result.IsCompleted)
            {
                return false;
            }
        }

        return true;
    }

    private async ValueTask CopyToEndAsync(PipeReader from, Socket to)
    {
        while (true)
        {
            var result = await from.ReadAsync().ConfigureAwait(false);
            var buffer = result.Buffer;
            if (!buffer.IsEmpty)
            {
                await SocketSend.SendAllAsync(to, buffer).ConfigureAwait(false);
                Count(buffer.Length, upstream: false);
            }

            from.AdvanceTo(buffer.End);
            if (result.IsCompleted || result.IsCanceled)
            {
                return;
            }
        }
    }

    private void Count(long bytes, bool upstream)
    {
        Touch();
        if (upstream)
        {
            Interlocked.Add(ref _bytesUp, bytes);
        }
        else
        {
            Interlocked.Add(ref _bytesDown, bytes);
        }
    }
}
