using System.Net;

namespace ChronoGuard.Policy;

/// <summary>What the decision sees of one request: spans over the parsed head, no copies.</summary>
internal readonly ref struct RequestFacts
{
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

    /// <summary>Origin-form path and query; empty for tunnels.</summary>
    public ReadOnlySpan<byte> Path { get; }

    public ReadOnlySpan<byte> UserAgent { get; }

    public IPAddress? Source { get; }

    public bool IsConnect { get; }
}
