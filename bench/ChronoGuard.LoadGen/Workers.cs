using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace ChronoGuard.LoadGen;

/// <summary>Error kinds as dense indexes, so a worker counts an error with one array increment.</summary>
internal static class ErrorKinds
{
    public const int ConnectRefused = 0;
    public const int Timeout = 1;
    public const int Reset = 2;
    public const int Tls = 3;
    public const int Protocol = 4;
    public const int Other = 5;
    private const int FixedCount = 6;
    private const int StatusSpan = 500; // statuses 100..599
    // SOCKS5 refusals: no acceptable method, a failed login, then reply codes 0..255.
    private const int SocksBase = FixedCount + (2 * StatusSpan);
    public const int SocksNoMethod = SocksBase;
    public const int SocksLoginFailed = SocksBase + 1;
    private const int SocksReplyBase = SocksBase + 2;
    public const int Count = SocksReplyBase + 256;

    private static readonly string[] FixedNames = ["connect_refused", "timeout", "reset", "tls", "protocol", "other"];

    public static int ProxyStatus(int status) =>
        status is >= 100 and < 600 ? FixedCount + status - 100 : Protocol;

    public static int UpstreamStatus(int status) =>
        status is >= 100 and < 600 ? FixedCount + StatusSpan + status - 100 : Protocol;

    public static int SocksReply(byte code) => SocksReplyBase + code;

    /// <summary>The peer answered (an HTTP status or a SOCKS5 refusal), as opposed to a transport failure.</summary>
    public static bool IsStatus(int index) => index >= FixedCount;

    public static string Name(int index) => index switch
    {
        < FixedCount => FixedNames[index],
        < FixedCount + StatusSpan => "proxy_status_" + (index - FixedCount + 100).ToString(CultureInfo.InvariantCulture),
        < SocksBase => "upstream_status_" + (index - FixedCount - StatusSpan + 100).ToString(CultureInfo.InvariantCulture),
        SocksNoMethod => "socks_no_method", // X'FF': no acceptable method
        SocksLoginFailed => "socks_login_failed",
        _ => "socks_reply_" + (index - SocksReplyBase).ToString("x2", CultureInfo.InvariantCulture),
    };

    /// <param name="handshake">The failure happened while TLS was being negotiated.</param>
    public static int Classify(Exception ex, bool handshake) => ex switch
    {
        // Only reached when the run is not stopping, so a cancellation is the per-request timer.
        OperationCanceledException => Timeout,
        AuthenticationException => Tls,
        SocketException se => FromSocket(se.SocketErrorCode, handshake),
        IOException { InnerException: SocketException se } => FromSocket(se.SocketErrorCode, handshake),
        // EndOfStreamException (ours) and SslStream's "unexpected EOF" both mean the peer hung up.
        IOException => handshake ? Tls : Reset,
        InvalidDataException => Protocol,
        // Only the tunnel pump disposes a live socket, to stop one direction after the other failed.
        ObjectDisposedException => Reset,
        _ => Other,
    };

    private static int FromSocket(SocketError error, bool handshake) => error switch
    {
        SocketError.ConnectionRefused => ConnectRefused,
        SocketError.TimedOut => Timeout,
        SocketError.ConnectionReset or SocketError.ConnectionAborted or SocketError.Shutdown
            or SocketError.OperationAborted or SocketError.NotConnected or SocketError.Disconnecting
            => handshake ? Tls : Reset,
        _ => Other,
    };
}

/// <summary>Everything one worker counts. Each field has a single writer; the progress line reads them racily.</summary>
internal sealed class WorkerStats
{
    /// <summary>Samples that started and finished inside the measured window.</summary>
    public Histogram Latency { get; } = new();
    /// <summary>Samples outside the window: kept only so the progress line has numbers during warm-up.</summary>
    public Histogram WarmupLatency { get; } = new();
    public long[] Errors { get; } = new long[ErrorKinds.Count];

    public long ErrorsAll;       // including warm-up, for the progress line
    public long BytesIn;         // measured window only
    public long BytesOut;
    public long BytesInAll;      // tunnel mode progress
    public long BytesOutAll;
    public long Tunnels;

    public void RecordResponse(RunContext ctx, long start, long end, int errorIndex, long bytesIn, long bytesOut)
    {
        var micros = RunContext.ToMicros(end - start);
        if (ctx.InWindow(start, end))
        {
            Latency.Record(micros);
            BytesIn += bytesIn;
            BytesOut += bytesOut;
            if (errorIndex >= 0)
            {
                Errors[errorIndex]++;
            }
        }
        else
        {
            WarmupLatency.Record(micros);
        }
        if (errorIndex >= 0)
        {
            Volatile.Write(ref ErrorsAll, ErrorsAll + 1);
        }
    }

    /// <summary>Tunnel bytes are attributed to the window by when they moved, not per sample.</summary>
    public void AddIn(RunContext ctx, long n)
    {
        if (ctx.InWindow(Stopwatch.GetTimestamp()))
        {
            BytesIn += n;
        }
        Volatile.Write(ref BytesInAll, BytesInAll + n);
    }

    public void AddOut(RunContext ctx, long n)
    {
        if (ctx.InWindow(Stopwatch.GetTimestamp()))
        {
            BytesOut += n;
        }
        Volatile.Write(ref BytesOutAll, BytesOutAll + n);
    }

    public void RecordFailure(RunContext ctx, long start, long end, int errorIndex, long bytesIn, long bytesOut)
    {
        if (ctx.InWindow(start, end))
        {
            Errors[errorIndex]++;
            BytesIn += bytesIn;
            BytesOut += bytesOut;
        }
        Volatile.Write(ref ErrorsAll, ErrorsAll + 1);
    }
}

/// <summary>Run-wide, read-only-after-start state shared by all workers.</summary>
internal sealed class RunContext
{
    private static readonly double MicrosPerTick = 1_000_000.0 / Stopwatch.Frequency;
    private long _claimed;
    private int _tunnelsPending;
    private readonly TaskCompletionSource _tunnelsAttempted = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public required Options Options { get; init; }
    public required EndPoint FirstHop { get; init; }
    public bool ViaProxy { get; init; }
    /// <summary>The GET (forward, connect) sent on every request, encoded once.</summary>
    public byte[] Request { get; init; } = [];
    /// <summary>The CONNECT request when going through an HTTP proxy (connect and tunnel modes).</summary>
    public byte[]? ConnectRequest { get; init; }
    /// <summary>The SOCKS5 negotiation when going through a SOCKS5 proxy (connect and tunnel modes).</summary>
    public SocksMessages? Socks { get; init; }
    public SslClientAuthenticationOptions? Tls { get; init; }
    public required CancellationToken Stop { get; init; }
    public long MeasureStart { get; set; }
    public long MeasureEnd { get; set; } = long.MaxValue;

    public static long ToMicros(long ticks) => (long)(ticks * MicrosPerTick);

    public static long TicksFrom(TimeSpan t) => (long)(t.TotalSeconds * Stopwatch.Frequency);

    /// <summary>
    /// Completes once every tunnel worker has tried its first set-up. Pumping starts only then: a
    /// pump that finds room in its send buffer loops without yielding, and on a small machine the
    /// first pumps would hold the thread pool while the other tunnels wait, inflating set-up latency.
    /// </summary>
    public Task TunnelsAttempted => _tunnelsAttempted.Task;

    public void TunnelAttempted()
    {
        if (Interlocked.Increment(ref _tunnelsPending) == Options.Concurrency)
        {
            _tunnelsAttempted.TrySetResult();
        }
    }

    public bool InWindow(long start, long end) => start >= MeasureStart && end <= MeasureEnd;

    public bool InWindow(long at) => at >= MeasureStart && at < MeasureEnd;

    /// <summary>
    /// With -n, a request may start only if it gets one of the N measured tickets; warm-up
    /// requests take none, so exactly N requests are measured.
    /// </summary>
    public bool TryClaim(long now)
    {
        if (Options.Requests <= 0)
        {
            return now < MeasureEnd;
        }
        return now < MeasureStart || Interlocked.Increment(ref _claimed) <= Options.Requests;
    }

    /// <param name="socksAddress">With socks5://, the target name resolved once at start; null sends the name.</param>
    public static RunContext Create(Options o, EndPoint firstHop, CancellationToken stop, IPAddress? socksAddress = null)
    {
        var viaProxy = o.Proxy is not null;
        var auth = o.ProxyAuthorizationValue is { } a ? "Proxy-Authorization: " + a + "\r\n" : "";
        var authority = o.TargetAuthority;
        const string Common = "User-Agent: chronoguard-loadgen/0.1\r\nAccept: */*\r\n";
        byte[] request = [];
        byte[]? connect = null;
        switch (o.Mode)
        {
            case LoadMode.Forward:
                var requestTarget = viaProxy ? "http://" + authority + o.TargetPathAndQuery : o.TargetPathAndQuery;
                request = Encoding.ASCII.GetBytes(
                    "GET " + requestTarget + " HTTP/1.1\r\nHost: " + authority + "\r\n" + (viaProxy ? auth : "") + Common + "\r\n");
                break;
            case LoadMode.Connect:
                request = Encoding.ASCII.GetBytes(
                    "GET " + o.TargetPathAndQuery + " HTTP/1.1\r\nHost: " + authority + "\r\n" + Common + (o.KeepAlive || o.NoConnectionClose ? "" : "Connection: close\r\n") + "\r\n");
                break;
        }
        SocksMessages? socks = null;
        if (o.Socks)
        {
            socks = SocksMessages.Create(o.ProxyCredentials, o.TargetHost,
                socksAddress ?? (IPAddress.TryParse(o.TargetHost, out var literal) ? literal : null), o.TargetPort);
        }
        else if (viaProxy && o.Mode != LoadMode.Forward)
        {
            connect = Encoding.ASCII.GetBytes("CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n" + auth + "\r\n");
        }
        SslClientAuthenticationOptions? tls = null;
        if (o.Tls)
        {
            var insecure = o.Insecure;
            tls = new SslClientAuthenticationOptions
            {
                TargetHost = o.TargetHost,
                ApplicationProtocols = [SslApplicationProtocol.Http11],
                RemoteCertificateValidationCallback = (_, _, _, errors) => insecure || errors == SslPolicyErrors.None,
                AllowTlsResume = !o.NoTlsResume,
            };
            if (insecure && o.CaCertificates is null)
            {
                // Any certificate is accepted, but SslStream still builds a chain before it asks the
                // callback, and against the system store that is OpenSSL loading and sorting every root
                // per handshake: 40% of this LoadGen's CPU per new TLS tunnel (perf record), which capped
                // the load it could offer at ~450-640 tunnels/s on one core. An empty custom root store
                // makes that chain build a cheap failure the callback then waives.
                tls.CertificateChainPolicy = new X509ChainPolicy
                {
                    TrustMode = X509ChainTrustMode.CustomRootTrust,
                    RevocationMode = X509RevocationMode.NoCheck,
                    DisableCertificateDownloads = true,
                };
            }
            else if (o.CaCertificates is { } anchors)
            {
                // Only these anchors vouch for the origin (a TLS-inspecting proxy's CA): the chain is
                // built against them alone, and the name is still checked by SslStream.
                var policy = new X509ChainPolicy
                {
                    TrustMode = X509ChainTrustMode.CustomRootTrust,
                    RevocationMode = X509RevocationMode.NoCheck,
                };
                policy.CustomTrustStore.AddRange(anchors);
                tls.CertificateChainPolicy = policy;
            }
        }
        return new RunContext
        {
            Options = o,
            FirstHop = firstHop,
            ViaProxy = viaProxy,
            Request = request,
            ConnectRequest = connect,
            Socks = socks,
            Tls = tls,
            Stop = stop,
        };
    }
}

internal static class Workers
{
    public static Task RunAsync(RunContext ctx, WorkerStats stats) => ctx.Options.Mode switch
    {
        LoadMode.Forward => GuardAsync(ctx, stats, ForwardAsync),
        LoadMode.Connect when ctx.Options.KeepAlive => GuardAsync(ctx, stats, ConnectKeepAliveAsync),
        LoadMode.Connect => GuardAsync(ctx, stats, ConnectModeAsync),
        _ => GuardAsync(ctx, stats, TunnelAsync),
    };

    /// <summary>Last line of defence: whatever a loop failed to anticipate becomes an "other" error, never a faulted task.</summary>
    private static async Task GuardAsync(RunContext ctx, WorkerStats stats, Func<RunContext, WorkerStats, Task> body)
    {
        try
        {
            await body(ctx, stats).ConfigureAwait(false);
        }
        // A worker must never take the run down; the failure is counted instead.
        catch (Exception)
        {
            if (!ctx.Stop.IsCancellationRequested)
            {
                var now = Stopwatch.GetTimestamp();
                stats.RecordFailure(ctx, now, now, ErrorKinds.Other, 0, 0);
            }
        }
    }

    /// <summary>
    /// Re-arms the per-request timeout. Resetting the same source avoids allocating a
    /// CancellationTokenSource (and its timer) per request; a new one is needed only after it fired.
    /// </summary>
    private static CancellationTokenSource Arm(CancellationTokenSource cts, RunContext ctx)
    {
        if (!cts.TryReset())
        {
            cts.Dispose();
            cts = CancellationTokenSource.CreateLinkedTokenSource(ctx.Stop);
        }
        cts.CancelAfter(ctx.Options.Timeout);
        return cts;
    }

    private static async Task ForwardAsync(RunContext ctx, WorkerStats w)
    {
        var reader = new ResponseReader();
        var timeouts = CancellationTokenSource.CreateLinkedTokenSource(ctx.Stop);
        var request = ctx.Request;
        Socket? socket = null;
        var reused = false;
        long written = 0;
        try
        {
            while (!ctx.Stop.IsCancellationRequested)
            {
                var start = Stopwatch.GetTimestamp();
                if (!ctx.TryClaim(start))
                {
                    break;
                }
                timeouts = Arm(timeouts, ctx);
                var ct = timeouts.Token;
                var readBefore = reader.BytesRead;
                var writtenBefore = written;
                try
                {
                    int status;
                    while (true)
                    {
                        if (socket is null)
                        {
                            socket = await OpenAsync(ctx.FirstHop, ct).ConfigureAwait(false);
                            reader.Attach(socket);
                            reused = false;
                        }
                        try
                        {
                            await SendAllAsync(socket, request, ct).ConfigureAwait(false);
                            written += request.Length;
                            status = await reader.ReadHeadAsync(ct).ConfigureAwait(false);
                        }
                        catch (SocketException) when (reused)
                        {
                            status = -1;
                        }
                        if (status >= 0)
                        {
                            break;
                        }
                        // The server closed the idle keep-alive connection as we reused it (it may
                        // cap requests per connection): that is not the proxy's failure, so retry
                        // once on a fresh connection, still timed from the original start.
                        socket.Dispose();
                        socket = null;
                        if (!reused)
                        {
                            throw new EndOfStreamException("connection closed before any response byte");
                        }
                    }
                    await reader.ReadBodyAsync(ct).ConfigureAwait(false);
                    var end = Stopwatch.GetTimestamp();
                    var errorIndex = -1;
                    if (status >= 400)
                    {
                        errorIndex = ctx.ViaProxy && (status == 407 || reader.ProxyGenerated)
                            ? ErrorKinds.ProxyStatus(status)
                            : ErrorKinds.UpstreamStatus(status);
                    }
                    if (reader.Close)
                    {
                        socket.Dispose();
                        socket = null;
                    }
                    else
                    {
                        reused = true;
                    }
                    w.RecordResponse(ctx, start, end, errorIndex, reader.BytesRead - readBefore, written - writtenBefore);
                }
                // Every failure is a counted error kind; none may end the worker.
                catch (Exception ex)
                {
                    socket?.Dispose();
                    socket = null;
                    if (ctx.Stop.IsCancellationRequested)
                    {
                        break; // cut off by the end of the run: neither a sample nor an error
                    }
                    w.RecordFailure(ctx, start, Stopwatch.GetTimestamp(), ErrorKinds.Classify(ex, handshake: false),
                        reader.BytesRead - readBefore, written - writtenBefore);
                }
            }
        }
        finally
        {
            socket?.Dispose();
            timeouts.Dispose();
        }
    }

    private static async Task ConnectModeAsync(RunContext ctx, WorkerStats w)
    {
        var reader = new ResponseReader();
        var timeouts = CancellationTokenSource.CreateLinkedTokenSource(ctx.Stop);
        var request = ctx.Request;
        var connect = ctx.ConnectRequest;
        var socks = ctx.Socks is { } messages ? new SocksHandshake(messages) : null;
        try
        {
            while (!ctx.Stop.IsCancellationRequested)
            {
                var start = Stopwatch.GetTimestamp();
                if (!ctx.TryClaim(start))
                {
                    break;
                }
                timeouts = Arm(timeouts, ctx);
                var ct = timeouts.Token;
                var readBefore = reader.BytesRead + (socks?.BytesRead ?? 0);
                var socksWrittenBefore = socks?.BytesWritten ?? 0;
                long written = 0;
                Socket? socket = null;
                SslStream? tls = null;
                var handshake = false;
                try
                {
                    socket = await OpenAsync(ctx.FirstHop, ct).ConfigureAwait(false);
                    reader.Attach(socket);
                    var errorIndex = -1;
                    int status;
                    if (connect is not null)
                    {
                        await SendAllAsync(socket, connect, ct).ConfigureAwait(false);
                        written += connect.Length;
                        status = await reader.ReadHeadAsync(ct).ConfigureAwait(false);
                        if (status < 0)
                        {
                            throw new EndOfStreamException("proxy closed the connection without answering CONNECT");
                        }
                        if (status is < 200 or >= 300)
                        {
                            errorIndex = ErrorKinds.ProxyStatus(status);
                        }
                        else if (reader.Buffered > 0)
                        {
                            throw new InvalidDataException("proxy sent tunnel data before the client spoke");
                        }
                    }
                    else if (socks is not null)
                    {
                        errorIndex = await socks.OpenAsync(socket, ct).ConfigureAwait(false);
                    }
                    if (errorIndex < 0)
                    {
                        if (ctx.Tls is not null)
                        {
                            handshake = true;
                            tls = new SslStream(new NetworkStream(socket, ownsSocket: true), leaveInnerStreamOpen: false);
                            await tls.AuthenticateAsClientAsync(ctx.Tls, ct).ConfigureAwait(false);
                            handshake = false;
                            reader.Attach(tls);
                            await tls.WriteAsync(request, ct).ConfigureAwait(false);
                        }
                        else
                        {
                            await SendAllAsync(socket, request, ct).ConfigureAwait(false);
                        }
                        written += request.Length;
                        status = await reader.ReadHeadAsync(ct).ConfigureAwait(false);
                        if (status < 0)
                        {
                            throw new EndOfStreamException("connection closed before any response byte");
                        }
                        await reader.ReadBodyAsync(ct).ConfigureAwait(false);
                        if (status >= 400)
                        {
                            errorIndex = ErrorKinds.UpstreamStatus(status);
                        }
                    }
                    w.RecordResponse(ctx, start, Stopwatch.GetTimestamp(), errorIndex,
                        reader.BytesRead + (socks?.BytesRead ?? 0) - readBefore, written + (socks?.BytesWritten ?? 0) - socksWrittenBefore);
                }
                // Every failure is a counted error kind; none may end the worker.
                catch (Exception ex)
                {
                    if (ctx.Stop.IsCancellationRequested)
                    {
                        break;
                    }
                    w.RecordFailure(ctx, start, Stopwatch.GetTimestamp(), ErrorKinds.Classify(ex, handshake),
                        reader.BytesRead + (socks?.BytesRead ?? 0) - readBefore, written + (socks?.BytesWritten ?? 0) - socksWrittenBefore);
                }
                finally
                {
                    tls?.Dispose();
                    socket?.Dispose();
                }
            }
        }
        finally
        {
            timeouts.Dispose();
        }
    }

    /// <summary>
    /// connect --keep-alive: the worker's tunnel (CONNECT or SOCKS5, then TLS with --tls) is opened
    /// once and carries keep-alive requests one after another, like forward mode's socket. Opening it
    /// is part of the first request's sample; a tunnel the far end closed as it was reused is opened
    /// again once, still timed from the original start.
    /// </summary>
    private static async Task ConnectKeepAliveAsync(RunContext ctx, WorkerStats w)
    {
        var reader = new ResponseReader();
        var timeouts = CancellationTokenSource.CreateLinkedTokenSource(ctx.Stop);
        var request = ctx.Request;
        var connect = ctx.ConnectRequest;
        var socks = ctx.Socks is { } messages ? new SocksHandshake(messages) : null;
        Socket? socket = null;
        SslStream? tls = null;
        var reused = false;
        long written = 0;
        void Drop()
        {
            tls?.Dispose();
            socket?.Dispose();
            tls = null;
            socket = null;
        }
        try
        {
            while (!ctx.Stop.IsCancellationRequested)
            {
                var start = Stopwatch.GetTimestamp();
                if (!ctx.TryClaim(start))
                {
                    break;
                }
                timeouts = Arm(timeouts, ctx);
                var ct = timeouts.Token;
                var readBefore = reader.BytesRead + (socks?.BytesRead ?? 0);
                var writtenBefore = written + (socks?.BytesWritten ?? 0);
                var handshake = false;
                try
                {
                    var errorIndex = -1;
                    var status = -1;
                    while (true)
                    {
                        if (socket is null)
                        {
                            reused = false;
                            socket = await OpenAsync(ctx.FirstHop, ct).ConfigureAwait(false);
                            reader.Attach(socket);
                            if (connect is not null)
                            {
                                await SendAllAsync(socket, connect, ct).ConfigureAwait(false);
                                written += connect.Length;
                                var connectStatus = await reader.ReadHeadAsync(ct).ConfigureAwait(false);
                                if (connectStatus < 0)
                                {
                                    throw new EndOfStreamException("proxy closed the connection without answering CONNECT");
                                }
                                if (connectStatus is < 200 or >= 300)
                                {
                                    errorIndex = ErrorKinds.ProxyStatus(connectStatus);
                                }
                                else if (reader.Buffered > 0)
                                {
                                    throw new InvalidDataException("proxy sent tunnel data before the client spoke");
                                }
                            }
                            else if (socks is not null)
                            {
                                errorIndex = await socks.OpenAsync(socket, ct).ConfigureAwait(false);
                            }
                            if (errorIndex >= 0)
                            {
                                break;
                            }
                            if (ctx.Tls is not null)
                            {
                                handshake = true;
                                tls = new SslStream(new NetworkStream(socket, ownsSocket: true), leaveInnerStreamOpen: false);
                                await tls.AuthenticateAsClientAsync(ctx.Tls, ct).ConfigureAwait(false);
                                handshake = false;
                                reader.Attach(tls);
                            }
                            w.Tunnels++;
                        }
                        try
                        {
                            if (tls is not null)
                            {
                                await tls.WriteAsync(request, ct).ConfigureAwait(false);
                            }
                            else
                            {
                                await SendAllAsync(socket, request, ct).ConfigureAwait(false);
                            }
                            written += request.Length;
                            status = await reader.ReadHeadAsync(ct).ConfigureAwait(false);
                        }
                        catch (IOException) when (reused)
                        {
                            status = -1;
                        }
                        catch (SocketException) when (reused)
                        {
                            status = -1;
                        }
                        if (status >= 0)
                        {
                            break;
                        }
                        var wasReused = reused;
                        Drop();
                        if (!wasReused)
                        {
                            throw new EndOfStreamException("connection closed before any response byte");
                        }
                    }
                    if (errorIndex >= 0)
                    {
                        // The proxy refused the tunnel: a counted answer, and the next request asks again.
                        Drop();
                    }
                    else
                    {
                        await reader.ReadBodyAsync(ct).ConfigureAwait(false);
                        if (status >= 400)
                        {
                            // Inside an inspected tunnel a refusal comes from the proxy with its own headers.
                            errorIndex = reader.ProxyGenerated ? ErrorKinds.ProxyStatus(status) : ErrorKinds.UpstreamStatus(status);
                        }
                        if (reader.Close)
                        {
                            Drop();
                        }
                        else
                        {
                            reused = true;
                        }
                    }
                    w.RecordResponse(ctx, start, Stopwatch.GetTimestamp(), errorIndex,
                        reader.BytesRead + (socks?.BytesRead ?? 0) - readBefore, written + (socks?.BytesWritten ?? 0) - writtenBefore);
                }
                // Every failure is a counted error kind; none may end the worker.
                catch (Exception ex)
                {
                    Drop();
                    if (ctx.Stop.IsCancellationRequested)
                    {
                        break;
                    }
                    w.RecordFailure(ctx, start, Stopwatch.GetTimestamp(), ErrorKinds.Classify(ex, handshake),
                        reader.BytesRead + (socks?.BytesRead ?? 0) - readBefore, written + (socks?.BytesWritten ?? 0) - writtenBefore);
                }
            }
        }
        finally
        {
            Drop();
            timeouts.Dispose();
        }
    }

    private static async Task TunnelAsync(RunContext ctx, WorkerStats w)
    {
        var chunk = new byte[ctx.Options.Size];
        for (var i = 0; i < chunk.Length; i++)
        {
            chunk[i] = (byte)('a' + (i % 26));
        }
        var readBuffer = new byte[64 * 1024];
        var reader = new ResponseReader();
        var socks = ctx.Socks is { } messages ? new SocksHandshake(messages) : null;
        var timeouts = CancellationTokenSource.CreateLinkedTokenSource(ctx.Stop);
        var attempted = false;
        try
        {
            while (!ctx.Stop.IsCancellationRequested)
            {
                var start = Stopwatch.GetTimestamp();
                Socket? socket = null;
                var failed = false;
                var pumping = false;
                try
                {
                    timeouts = Arm(timeouts, ctx);
                    var ct = timeouts.Token;
                    socket = await OpenAsync(ctx.FirstHop, ct).ConfigureAwait(false);
                    if (ctx.ConnectRequest is { } connect)
                    {
                        reader.Attach(socket);
                        await SendAllAsync(socket, connect, ct).ConfigureAwait(false);
                        var status = await reader.ReadHeadAsync(ct).ConfigureAwait(false);
                        if (status < 0)
                        {
                            throw new EndOfStreamException("proxy closed the connection without answering CONNECT");
                        }
                        if (status is < 200 or >= 300)
                        {
                            w.RecordResponse(ctx, start, Stopwatch.GetTimestamp(), ErrorKinds.ProxyStatus(status), 0, 0);
                            failed = true;
                        }
                        else
                        {
                            w.AddIn(ctx, reader.Buffered);
                        }
                    }
                    else if (socks is not null
                        && await socks.OpenAsync(socket, ct).ConfigureAwait(false) is var refused and >= 0)
                    {
                        w.RecordResponse(ctx, start, Stopwatch.GetTimestamp(), refused, 0, 0);
                        failed = true;
                    }
                    if (!failed)
                    {
                        // Setup latency is the only per-sample figure a tunnel has; throughput is the result.
                        w.RecordResponse(ctx, start, Stopwatch.GetTimestamp(), -1, 0, 0);
                        w.Tunnels++;
                    }
                    if (!attempted)
                    {
                        attempted = true;
                        ctx.TunnelAttempted();
                    }
                    if (!failed)
                    {
                        await ctx.TunnelsAttempted.WaitAsync(ctx.Stop).ConfigureAwait(false);
                        pumping = true;
                        await PumpAsync(ctx, w, socket, chunk, readBuffer).ConfigureAwait(false);
                    }
                }
                // Every failure is a counted error kind; none may end the worker.
                catch (Exception ex)
                {
                    if (ctx.Stop.IsCancellationRequested)
                    {
                        break;
                    }
                    failed = true;
                    // A tunnel opened during warm-up that breaks inside the window is a measured
                    // failure, so an established tunnel's failure is dated when it happened.
                    var now = Stopwatch.GetTimestamp();
                    w.RecordFailure(ctx, pumping ? now : start, now, ErrorKinds.Classify(ex, handshake: false), 0, 0);
                    if (!attempted)
                    {
                        attempted = true;
                        ctx.TunnelAttempted();
                    }
                }
                finally
                {
                    socket?.Dispose();
                }
                if (failed)
                {
                    // A refused or broken tunnel would otherwise be retried in a tight loop that only
                    // measures how fast the proxy can say no.
                    try
                    {
                        await Task.Delay(100, ctx.Stop).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException)
                    {
                        break;
                    }
                }
            }
        }
        finally
        {
            timeouts.Dispose();
        }
    }

    /// <summary>
    /// Writes and reads concurrently until the run stops or either direction fails; the first
    /// failure closes the socket so the other direction ends too, and is the one reported.
    /// </summary>
    private static async Task PumpAsync(RunContext ctx, WorkerStats w, Socket socket, byte[] chunk, byte[] readBuffer)
    {
        var pump = new TunnelPump(socket);
        var reading = ReadLoopAsync(ctx, w, pump, readBuffer);
        await WriteLoopAsync(ctx, w, pump, chunk).ConfigureAwait(false);
        await reading.ConfigureAwait(false);
        if (pump.FirstError is { } error)
        {
            throw error;
        }
    }

    private static async Task WriteLoopAsync(RunContext ctx, WorkerStats w, TunnelPump pump, byte[] chunk)
    {
        try
        {
            while (true)
            {
                var n = await pump.Socket.SendAsync(chunk, SocketFlags.None, ctx.Stop).ConfigureAwait(false);
                w.AddOut(ctx, n);
            }
        }
        // Handed to the pump, which reports the first failure of either direction.
        catch (Exception ex)
        {
            pump.Fail(ex);
        }
    }

    private static async Task ReadLoopAsync(RunContext ctx, WorkerStats w, TunnelPump pump, byte[] buffer)
    {
        try
        {
            int n;
            while ((n = await pump.Socket.ReceiveAsync(buffer, SocketFlags.None, ctx.Stop).ConfigureAwait(false)) > 0)
            {
                w.AddIn(ctx, n);
            }
            // A discard target may close its sending side and keep reading; only writes can tell
            // whether the tunnel is really gone.
        }
        // Handed to the pump, which reports the first failure of either direction.
        catch (Exception ex)
        {
            pump.Fail(ex);
        }
    }

    private sealed class TunnelPump(Socket socket)
    {
        private Exception? _first;

        public Socket Socket { get; } = socket;
        public Exception? FirstError => Volatile.Read(ref _first);

        public void Fail(Exception ex)
        {
            if (Interlocked.CompareExchange(ref _first, ex, null) is null)
            {
                Socket.Dispose();
            }
        }
    }

    /// <summary>
    /// Runs the connect / request / response-head path against an in-process loopback listener, so
    /// JIT compilation and socket-engine start-up are not charged to the first real samples. Tunnel
    /// mode needs this most: each tunnel is opened once, so no warm-up period absorbs those costs.
    /// </summary>
    public static async Task PrimeAsync(CancellationToken ct)
    {
        try
        {
            using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            listener.Listen(16);
            var reader = new ResponseReader();
            var request = "CONNECT prime:1 HTTP/1.1\r\nHost: prime:1\r\n\r\n"u8.ToArray();
            var response = "HTTP/1.1 200 Connection established\r\n\r\n"u8.ToArray();
            for (var i = 0; i < 20; i++)
            {
                var accepting = listener.AcceptAsync(ct).AsTask();
                using var client = await OpenAsync(listener.LocalEndPoint!, ct).ConfigureAwait(false);
                using var server = await accepting.ConfigureAwait(false);
                await SendAllAsync(client, request, ct).ConfigureAwait(false);
                await SendAllAsync(server, response, ct).ConfigureAwait(false);
                reader.Attach(client);
                await reader.ReadHeadAsync(ct).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException)
        {
            // Best effort: without IPv4 loopback the first samples are merely slower.
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private static async ValueTask<Socket> OpenAsync(EndPoint endPoint, CancellationToken ct)
    {
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(endPoint, ct).ConfigureAwait(false);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private static async ValueTask SendAllAsync(Socket socket, ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        while (!data.IsEmpty)
        {
            var n = await socket.SendAsync(data, SocketFlags.None, ct).ConfigureAwait(false);
            data = data[n..];
        }
    }
}
