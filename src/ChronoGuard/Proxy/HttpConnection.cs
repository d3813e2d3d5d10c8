using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using ChronoGuard.Http;

namespace ChronoGuard.Proxy;

/// <summary>
/// The HTTP/1.1 proxy protocol on a client connection: reads request heads, describes each request to
/// the gate (<see cref="GateRequest"/>), and runs it as a CONNECT tunnel or a forwarded exchange. It
/// holds no per-request buffer between requests: the head is rented when the next request's first
/// byte arrives and returned by the scope.
/// </summary>
internal sealed class HttpConnection : ClientConnection
{
    private const int MaxHeaders = 128;

    private static readonly HttpHeadPool RequestHeads = new();

    private HttpHead? _head;

    public HttpConnection(ProxyServer server, Socket socket, long id, string? listenerAgent)
        : base(server, socket, id, listenerAgent)
    {
    }

    protected override bool HeadStarted => Volatile.Read(ref _head) is { Length: > 0 };

    protected override async Task ServeAsync()
    {
        var first = true;
        while (true)
        {
            Clock.Enter(first ? ConnectionPhase.ReadingHead : ConnectionPhase.Idle);
            first = false;
            var (status, error) = await ReadHeadAsync().ConfigureAwait(false);
            if (status == HeadStatus.Incomplete)
            {
                return;
            }

            if (status == HeadStatus.Error)
            {
                await RefuseAsync(new Refusal(ParseErrors.StatusCode(error), "DENY", ParseErrors.Reason(error)), audit: true).ConfigureAwait(false);
                return;
            }

            Clock.Enter(ConnectionPhase.Busy);
            var head = TakeHead()!;
            var scope = new RequestScope(this, head.IsConnect ? FrontEnd.Connect : FrontEnd.Http, head);
            Decide(scope, head);
            if (!await RunScopeAsync(scope).ConfigureAwait(false) || IsAborted || IsDraining)
            {
                return;
            }
        }
    }

    private void Decide(RequestScope scope, HttpHead head)
    {
        var kept = Upstream;
        // A kept upstream's host string saves making one per keep-alive request.
        var knownHost = !head.IsConnect && kept is not null && kept.Serves(head.Span(head.TargetHost), head.TargetPort) ? kept.Host : null;
        scope.Decide(Describe(head, ListenerAgent), knownHost);
    }

    /// <summary>The request as the gate sees it, from the parsed head (spans over its buffer: no copies).</summary>
    internal static GateRequest Describe(HttpHead head, string? listenerAgent) => new()
    {
        FrontEnd = head.IsConnect ? FrontEnd.Connect : FrontEnd.Http,
        Host = head.Span(head.TargetHost),
        Port = head.TargetPort,
        Method = head.IsConnect ? default : head.Span(head.Method),
        Path = head.IsConnect ? default : head.Path,
        PathWithoutParameters = head.PathWithoutParameters,
        HasPathParameters = head.WithoutParametersLength >= 0,
        UserAgent = head.Span(head.UserAgent),
        Credentials = AgentCredentials.FromHeader(head.Span(head.ProxyAuthorization)),
        ListenerAgent = listenerAgent,
        RawHead = head.Buffer.AsSpan(0, head.Length),
    };

    /// <summary>
    /// Reads one request head. Incomplete means the connection should just close (clean EOF between
    /// requests, idle or drain); a header timeout is refused with 408 here.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<(HeadStatus Status, ParseError Error)> ReadHeadAsync()
    {
        while (true)
        {
            var result = await Input.ReadAsync().ConfigureAwait(false);
            var buffer = result.Buffer;
            if (result.IsCanceled || IsAborted)
            {
                if (Clock.Fired == TimeoutKind.Header && !IsAborted)
                {
                    Input.AdvanceTo(buffer.Start, buffer.End);
                    await RefuseAsync(new Refusal(408, "DENY", "header_timeout"), audit: true).ConfigureAwait(false);
                }

                return (HeadStatus.Incomplete, ParseError.None);
            }

            if (!buffer.IsEmpty && _head is null)
            {
                // The next request has begun: rent its head now (an idle connection holds none), and
                // from here its head must arrive within HeaderTimeoutMs. A new connection's first head
                // is timed from the accept, so a byte every HeaderTimeoutMs cannot stretch it.
                if (Clock.Phase == ConnectionPhase.Idle)
                {
                    Clock.Enter(ConnectionPhase.ReadingHead);
                }

                var head = RequestHeads.Rent(Context.Options.MaxHeaderBytes, MaxHeaders);
                Volatile.Write(ref _head, head);
            }

            if (_head is not { } current)
            {
                Input.AdvanceTo(buffer.End);
                return (HeadStatus.Incomplete, ParseError.None);
            }

            var status = HeadReader.TryRead(buffer, current, out var end, out var error);
            if (status == HeadStatus.Complete)
            {
                Input.AdvanceTo(end);
                error = HttpHeadParser.ParseRequest(current);
                return error == ParseError.None ? (HeadStatus.Complete, error) : (HeadStatus.Error, error);
            }

            if (status == HeadStatus.Error)
            {
                Input.AdvanceTo(buffer.Start, buffer.End);
                return (HeadStatus.Error, error);
            }

            if (result.IsCompleted)
            {
                Input.AdvanceTo(buffer.End);
                return (HeadStatus.Error, ParseError.TruncatedHead);
            }

            Input.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    private HttpHead? TakeHead() => Interlocked.Exchange(ref _head, null);

    protected override void OnClosed() => ReturnHead(TakeHead());

    /// <summary>Gives a request head back to the pool (the scope's exit calls this).</summary>
    internal static void ReturnHead(HttpHead? head)
    {
        if (head is not null)
        {
            RequestHeads.Return(head);
        }
    }

    protected override async ValueTask WriteRefusalAsync(Refusal refusal)
    {
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(ResponseWriter.MaxRefusalBytes);
        try
        {
            var n = ResponseWriter.WriteRefusal(buffer, refusal);
            await Transport.SendAsync(buffer.AsMemory(0, n)).ConfigureAwait(false);
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    public override ValueTask SendEstablishedAsync(IPEndPoint dialed) => Transport.SendAsync(ResponseWriter.ConnectEstablishedBytes);
}
