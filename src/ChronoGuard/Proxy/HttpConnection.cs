using System.Net;
using System.Net.Sockets;
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
    public HttpConnection(ProxyServer server, Socket socket, long id, string? listenerAgent)
        : base(server, socket, id, listenerAgent)
    {
    }

    protected override async Task ServeAsync()
    {
        for (var first = true; ; first = false)
        {
            if (await NextRequestHeadAsync(first, originForm: false).ConfigureAwait(false) is not { } head)
            {
                return;
            }

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

    protected override ValueTask WriteRefusalAsync(Refusal refusal) => WriteHttpRefusalAsync(refusal);

    public override ValueTask SendEstablishedAsync(IPEndPoint dialed) => Transport.SendAsync(ResponseWriter.ConnectEstablishedBytes);
}
