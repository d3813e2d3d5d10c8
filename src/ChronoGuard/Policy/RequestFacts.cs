using System.Net;

namespace ChronoGuard.Policy;

/// <summary>What the decision sees of one request: spans over the parsed head, no copies.</summary>
internal readonly ref struct RequestFacts
{
    private readonly ReadOnlySpan<byte> _pathWithoutParameters;

    public RequestFacts(ReadOnlySpan<byte> host, int port, ReadOnlySpan<byte> method, ReadOnlySpan<byte> path, ReadOnlySpan<byte> userAgent, IPAddress? source, bool isConnect)
    {
        Host = host;
        Port = port;
        Method = method;
        Path = path;
        UserAgent = userAgent;
        Source = source;
        IsConnect = isConnect;
    }

    /// <summary>ASCII host as the client wrote it (case and a trailing dot are the matcher's business).</summary>
    public ReadOnlySpan<byte> Host { get; }

    public int Port { get; }

    /// <summary><c>CONNECT</c> for tunnels.</summary>
    public ReadOnlySpan<byte> Method { get; }

    /// <summary>The normalised path as the origin receives it, without the query; empty for tunnels.</summary>
    public ReadOnlySpan<byte> Path { get; }

    /// <summary>
    /// The path as an origin that drops path parameters (<c>;…</c> up to the next <c>/</c>) reads it,
    /// normalised after they are dropped; set only when <see cref="Path"/> has a <c>;</c>.
    /// </summary>
    public ReadOnlySpan<byte> PathWithoutParameters
    {
        get => _pathWithoutParameters;
        init
        {
            _pathWithoutParameters = value;
            HasPathParameters = true;
        }
    }

    public bool HasPathParameters { get; private init; }

    public ReadOnlySpan<byte> UserAgent { get; }

    public IPAddress? Source { get; }

    public bool IsConnect { get; }
}
