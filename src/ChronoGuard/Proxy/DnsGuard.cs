using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using ChronoGuard.Net;
using ChronoGuard.Resolution;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace ChronoGuard.Proxy;

/// <summary>
/// The DNS guard (SPEC §10): a resolver on <c>Dns:Listen</c> (UDP, and TCP with its two-byte length
/// prefix) that answers only questions the agent's policies could allow. An allowed question is
/// answered from the cache or forwarded to <c>Dns:Upstream</c>, the answer rebuilt
/// (<see cref="DnsAnswers.Build"/>) and its addresses remembered per agent (<see cref="AnswerMemory"/>);
/// a refused one is answered NXDOMAIN (or REFUSED), never sent upstream, and recorded through the gate.
/// <para>
/// <see cref="Answer"/> is the synchronous step every query takes (parse, judge, cache): allocation-free
/// for a cached answer. Only a forward awaits. Bounds: <see cref="MaxForwardsInFlight"/> upstream
/// questions at once (more are answered SERVFAIL), <see cref="MaxTcpConnections"/> TCP clients, each
/// closed after <see cref="TcpIdleMs"/> without a query.
/// </para>
/// </summary>
internal sealed class DnsGuard : IAsyncDisposable
{
    public const int MaxForwardsInFlight = 1024;
    public const int MaxTcpConnections = 256;
    public const int TcpIdleMs = 10_000;
    private const int UdpFloor = 512;
    private const int UdpCeiling = 4096;

    private static readonly IPEndPoint Any4 = new(IPAddress.Any, 0);
    private static readonly IPEndPoint Any6 = new(IPAddress.IPv6Any, 0);

    private readonly IRequestGate _gate;
    private readonly AnswerMemory _memory;
    private readonly DnsAnswerCache _cache;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly string _agent;
    private readonly IPEndPoint _upstream;
    private readonly long _minTtlMs;
    private readonly long _maxTtlMs;
    private readonly int _refuseRcode;
    private readonly int _timeoutMs;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _loops = [];
    private Socket? _udp;
    private Socket? _tcp;
    private int _inFlight;
    private int _tcpOpen;
    private int _disposed;

    public DnsGuard(DnsOptions options, string agent, IPEndPoint upstream, IRequestGate gate, AnswerMemory memory, TimeProvider? time = null, ILogger? log = null, DnsAnswerCache? cache = null)
    {
        _gate = gate;
        _memory = memory;
        _cache = cache ?? new DnsAnswerCache();
        _time = time ?? TimeProvider.System;
        _log = log ?? NullLogger.Instance;
        _agent = agent;
        _upstream = upstream;
        _minTtlMs = options.MinTtlSeconds * 1000L;
        _maxTtlMs = options.MaxTtlSeconds * 1000L;
        _refuseRcode = string.Equals(options.RefuseStyle, "refused", StringComparison.OrdinalIgnoreCase) ? DnsWire.RcodeRefused : DnsWire.RcodeNxDomain;
        _timeoutMs = options.UpstreamTimeoutMs;
    }

    public AnswerMemory Memory => _memory;

    /// <summary>Where the guard listens (UDP and TCP on one port), once started.</summary>
    public IPEndPoint LocalEndpoint { get; private set; } = null!;

    /// <summary>Binds UDP and TCP on <paramref name="listen"/> (port 0: one free port for both) and starts serving.</summary>
    public void Start(IPEndPoint listen)
    {
        for (var attempt = 0; ; attempt++)
        {
            var udp = new Socket(listen.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            try
            {
                udp.Bind(listen);
                var bound = (IPEndPoint)udp.LocalEndPoint!;
                _tcp = ListenSocket.Open(bound, 128);
                _udp = udp;
                LocalEndpoint = bound;
                break;
            }
            catch (SocketException) when (listen.Port == 0 && attempt < 20)
            {
                udp.Dispose(); // the free UDP port was taken for TCP: try another
            }
            catch
            {
                udp.Dispose();
                throw;
            }
        }

        var udpDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        new Thread(() =>
        {
            try
            {
                UdpLoop();
            }
            finally
            {
                udpDone.SetResult();
            }
        })
        { IsBackground = true, Name = "chronoguard-dns-udp" }.Start();
        _loops.Add(udpDone.Task);
        _loops.Add(Task.Run(TcpAcceptLoopAsync));
        ProxyLog.DnsListening(_log, LocalEndpoint, _agent, _upstream);
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        if (_udp is not null)
        {
            // Closing a socket does not wake a thread blocked in recvfrom on Linux: an empty datagram does.
            using var wake = new Socket(LocalEndpoint.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            wake.SendTo([], LocalEndpoint.Address.Equals(IPAddress.Any) ? new IPEndPoint(IPAddress.Loopback, LocalEndpoint.Port)
                : LocalEndpoint.Address.Equals(IPAddress.IPv6Any) ? new IPEndPoint(IPAddress.IPv6Loopback, LocalEndpoint.Port) : LocalEndpoint);
        }

        _udp?.Dispose();
        _tcp?.Dispose();
        try
        {
            await Task.WhenAll(_loops).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        // _stop is not disposed: a forward still finishing may read its token, and it holds no timer.
    }

    /// <summary>
    /// The synchronous step of one query from <paramref name="source"/>: parse, judge, answer a refusal
    /// or a cached answer into <paramref name="dst"/> (<paramref name="length"/> bytes, at most
    /// <paramref name="limit"/> or the client's UDP size), or say it must be forwarded.
    /// </summary>
    public DnsStep Answer(ReadOnlySpan<byte> query, Span<byte> dst, SocketAddress source, bool tcp, out DnsQuestion question, out int length)
    {
        question = default;
        question.QuestionEnd = DnsWire.HeaderLength;
        question.UdpLimit = tcp ? DnsWire.MaxMessage : UdpFloor;
        length = 0;
        if (query.Length < DnsWire.HeaderLength)
        {
            Refuse(source, default, 0, ProxyReasons.DnsMalformed, enforced: true);
            return DnsStep.Dropped;
        }

        var flags = DnsWire.Flags(query);
        if (DnsWire.IsResponse(flags))
        {
            return DnsStep.Dropped; // never answer an answer: two resolvers pointed at each other would loop
        }

        if (DnsWire.Opcode(flags) != 0)
        {
            // UPDATE, NOTIFY, IQUERY: never forwarded, so nothing leaves; recorded like any refusal.
            Refuse(source, default, 0, ProxyReasons.DnsMalformed, enforced: true);
            length = DnsAnswers.WriteEmpty(query, question.QuestionEnd, DnsWire.RcodeNotImp, truncated: false, opt: false, dst);
            return DnsStep.Answered;
        }

        Span<byte> name = stackalloc byte[DnsWire.MaxNameText];
        var at = DnsWire.HeaderLength;
        if (DnsWire.Count(query, 0) != 1 || DnsWire.Count(query, 1) != 0 || DnsWire.Count(query, 2) != 0
            || !DnsWire.TryReadQuestion(query, ref at, name, out var nameLength, out var type, out var klass)
            || at - DnsWire.HeaderLength != nameLength + (nameLength == 0 ? 1 : 2) + 4 // compressed: its copy in the answer would not line up
            || !ReadOpt(query, at, ref question))
        {
            Refuse(source, default, 0, ProxyReasons.DnsMalformed, enforced: true);
            length = DnsAnswers.WriteEmpty(query, DnsWire.HeaderLength, DnsWire.RcodeFormErr, truncated: false, opt: false, dst);
            return DnsStep.Answered;
        }

        question.QuestionEnd = at;
        question.NameLength = nameLength;
        question.Type = type;
        var host = name[..nameLength];
        string? reason;
        bool enforced;
        if (klass != DnsWire.ClassIn)
        {
            (reason, enforced) = (ProxyReasons.DnsTypeRefused, true);
        }
        else if (!IsHostName(host))
        {
            (reason, enforced) = (ProxyReasons.DnsNameRefused, true);
        }
        else
        {
            reason = _gate.JudgeDnsQuestion(_agent, host, type, out enforced);
        }

        if (reason is not null)
        {
            Refuse(source, host, type, reason, enforced);
            if (enforced)
            {
                length = DnsAnswers.WriteEmpty(query, at, _refuseRcode, truncated: false, question.Opt, dst[..Math.Min(dst.Length, question.UdpLimit)]);
                return DnsStep.Answered;
            }
        }

        Span<byte> lower = stackalloc byte[DnsWire.MaxNameText];
        var key = lower[..DnsAnswerCache.Lower(host, lower)];
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        if (_cache.Find(key, type, now) is not { } cached)
        {
            return DnsStep.Forward;
        }

        var left = cached.ExpiresMs - now;
        Remember(cached, now + Math.Max(left, _minTtlMs), now);
        length = DnsAnswers.Serve(cached.Message, cached.TtlOffsets, (uint)((left + 999) / 1000), query, at, question.Opt, question.UdpLimit, dst);
        return DnsStep.Answered;
    }

    /// <summary>
    /// Asks the upstream (UDP, then TCP when the answer was truncated), rebuilds and remembers its answer,
    /// and writes the client's copy into <paramref name="dst"/>; SERVFAIL when the upstream fails, times
    /// out or answers something else. Returns the length.
    /// </summary>
    public async ValueTask<int> ForwardAsync(ReadOnlyMemory<byte> query, DnsQuestion question, Memory<byte> dst, CancellationToken cancellationToken)
    {
        if (Interlocked.Increment(ref _inFlight) > MaxForwardsInFlight)
        {
            Interlocked.Decrement(ref _inFlight);
            return DnsAnswers.WriteEmpty(query.Span, question.QuestionEnd, DnsWire.RcodeServFail, truncated: false, question.Opt, dst.Span);
        }

        var name = new byte[question.NameLength];
        var response = ArrayPool<byte>.Shared.Rent(DnsWire.MaxMessage);
        var rebuilt = ArrayPool<byte>.Shared.Rent(DnsWire.MaxMessage);
        try
        {
            var at = DnsWire.HeaderLength;
            DnsWire.TryReadName(query.Span, ref at, name, out _);
            var id = (ushort)Random.Shared.Next(65536);
            var ask = new byte[DnsWire.HeaderLength + DnsWire.MaxNameText + 2 + 4 + 11];
            var askLength = DnsAnswers.WriteQuery(ask, id, name, question.Type);
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stop.Token);
            deadline.CancelAfter(_timeoutMs);
            int got;
            try
            {
                got = await AskUdpAsync(ask.AsMemory(0, askLength), response, deadline.Token).ConfigureAwait(false);
                if (got >= 4 && DnsWire.Truncated(DnsWire.Flags(response)))
                {
                    got = await AskTcpAsync(ask.AsMemory(0, askLength), response, deadline.Token).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException or IOException)
            {
                got = -1;
            }

            var length = got < 0 ? -1 : Rebuild(response.AsSpan(0, got), id, name, question.Type, rebuilt);
            if (length < 0)
            {
                return DnsAnswers.WriteEmpty(query.Span, question.QuestionEnd, DnsWire.RcodeServFail, truncated: false, question.Opt, dst.Span);
            }

            return DnsAnswers.Serve(rebuilt.AsSpan(0, length), default, null, query.Span, question.QuestionEnd, question.Opt, question.UdpLimit, dst.Span);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(response);
            ArrayPool<byte>.Shared.Return(rebuilt);
            Interlocked.Decrement(ref _inFlight);
        }
    }

    /// <summary>The upstream's answer rebuilt into <paramref name="into"/>, cached and remembered; -1 when it is no answer to give.</summary>
    internal int Rebuild(ReadOnlySpan<byte> response, ushort id, byte[] name, ushort type, byte[] into)
    {
        Span<UInt128> addresses = stackalloc UInt128[32];
        Span<ushort> ttls = stackalloc ushort[64];
        var facts = new DnsAnswerFacts(addresses, ttls);
        if (DnsAnswers.Build(response, id, name, type, opt: false, into, ref facts, out var length) != DnsBuild.Ok)
        {
            return -1;
        }

        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var ttlMs = facts.TtlCount == 0 ? 0 : Math.Min(facts.MinTtl * 1000L, _maxTtlMs);
        var lowerName = new byte[name.Length];
        DnsAnswerCache.Lower(name, lowerName);
        var answer = new CachedAnswer(
            lowerName,
            type,
            into.AsSpan(0, length).ToArray(),
            ttls[..facts.TtlCount].ToArray(),
            Encoding.ASCII.GetString(lowerName),
            addresses[..facts.AddressCount].ToArray(),
            now + ttlMs,
            now + Math.Clamp(ttlMs, _minTtlMs, _maxTtlMs));
        Remember(answer, answer.RememberUntilMs, now);
        if (ttlMs > 0 && !facts.TooManyTtls && length <= DnsAnswerCache.MaxMessage)
        {
            _cache.Add(answer, now);
        }

        return length;
    }

    private void Remember(CachedAnswer answer, long untilMs, long nowMs)
    {
        foreach (var address in answer.Addresses)
        {
            _memory.Remember(_agent, answer.Name, address, untilMs, nowMs);
        }
    }

    private async ValueTask<int> AskUdpAsync(ReadOnlyMemory<byte> ask, byte[] response, CancellationToken cancellationToken)
    {
        using var socket = new Socket(_upstream.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        await socket.ConnectAsync(_upstream, cancellationToken).ConfigureAwait(false);
        await socket.SendAsync(ask, SocketFlags.None, cancellationToken).ConfigureAwait(false);
        var id = BinaryPrimitives.ReadUInt16BigEndian(ask.Span);
        while (true)
        {
            // A connected socket takes datagrams from the upstream only; one with another ID is not ours.
            var got = await socket.ReceiveAsync(response, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (got >= DnsWire.HeaderLength && DnsWire.Id(response) == id)
            {
                return got;
            }
        }
    }

    private async ValueTask<int> AskTcpAsync(ReadOnlyMemory<byte> ask, byte[] response, CancellationToken cancellationToken)
    {
        using var socket = new Socket(_upstream.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(_upstream, cancellationToken).ConfigureAwait(false);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        var prefixed = new byte[2 + ask.Length];
        BinaryPrimitives.WriteUInt16BigEndian(prefixed, (ushort)ask.Length);
        ask.CopyTo(prefixed.AsMemory(2));
        await stream.WriteAsync(prefixed, cancellationToken).ConfigureAwait(false);
        await stream.ReadExactlyAsync(response.AsMemory(0, 2), cancellationToken).ConfigureAwait(false);
        var length = BinaryPrimitives.ReadUInt16BigEndian(response);
        await stream.ReadExactlyAsync(response.AsMemory(0, length), cancellationToken).ConfigureAwait(false);
        return length;
    }

    /// <summary>
    /// The UDP receive loop on a thread of its own, with blocking calls: one recvfrom and one sendto per
    /// cached answer, no async state machine, no thread-pool hop (a third more answers per second than
    /// the async loop on one core). Stopped by <see cref="DisposeAsync"/> with a datagram to itself.
    /// </summary>
    private void UdpLoop()
    {
        var socket = _udp!;
        var buffer = GC.AllocateUninitializedArray<byte>(DnsWire.MaxMessage);
        var answer = GC.AllocateUninitializedArray<byte>(DnsWire.MaxMessage);
        var source = new SocketAddress(socket.AddressFamily);
        while (true)
        {
            int got;
            try
            {
                got = socket.ReceiveFrom(buffer, SocketFlags.None, source);
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            catch (SocketException e)
            {
                if (_stop.IsCancellationRequested)
                {
                    return;
                }

                ProxyLog.DnsReceiveFailed(_log, "UDP", e.SocketErrorCode.ToString());
                continue; // an ICMP error from an earlier send surfaces here: the socket is still good
            }

            if (_stop.IsCancellationRequested)
            {
                return;
            }

            DnsStep step;
            DnsQuestion question;
            int length;
            try
            {
                step = Answer(buffer.AsSpan(0, got), answer, source, tcp: false, out question, out length);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // A bug met by one datagram must not end the listener for every client after it.
                ProxyLog.DnsQueryFailed(_log, e);
                continue;
            }

            if (step == DnsStep.Answered && length > 0)
            {
                try
                {
                    socket.SendTo(answer.AsSpan(0, length), SocketFlags.None, source);
                }
                catch (SocketException)
                {
                    // The client is gone (ICMP unreachable), or the send buffer is full: a datagram may be lost.
                }
                catch (ObjectDisposedException)
                {
                    return;
                }
            }
            else if (step == DnsStep.Forward)
            {
                // The forward runs beside the loop: one slow upstream answer must not hold the next query.
                _ = ForwardUdpAsync(socket, buffer.AsSpan(0, got).ToArray(), question, CopyOf(source));
            }
        }
    }

    private async Task ForwardUdpAsync(Socket socket, byte[] query, DnsQuestion question, SocketAddress source)
    {
        var answer = ArrayPool<byte>.Shared.Rent(DnsWire.MaxMessage);
        try
        {
            var length = await ForwardAsync(query, question, answer, _stop.Token).ConfigureAwait(false);
            if (length > 0)
            {
                await SendToAsync(socket, answer.AsMemory(0, length), source).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Nobody awaits this task: an unexpected failure is logged here, not left unobserved.
            ProxyLog.DnsQueryFailed(_log, e);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(answer);
        }
    }

    private async ValueTask SendToAsync(Socket socket, ReadOnlyMemory<byte> answer, SocketAddress target)
    {
        try
        {
            await socket.SendToAsync(answer, SocketFlags.None, target, _stop.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The client is gone or the guard is stopping: nothing to tell anyone.
        }
    }

    private async Task TcpAcceptLoopAsync()
    {
        var listener = _tcp!;
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException e)
            {
                ProxyLog.DnsReceiveFailed(_log, "TCP", e.SocketErrorCode.ToString());
                continue;
            }

            if (Interlocked.Increment(ref _tcpOpen) > MaxTcpConnections)
            {
                Interlocked.Decrement(ref _tcpOpen);
                client.Dispose();
                continue;
            }

            _ = ServeTcpAsync(client);
        }
    }

    private async Task ServeTcpAsync(Socket client)
    {
        var query = ArrayPool<byte>.Shared.Rent(DnsWire.MaxMessage);
        var answer = ArrayPool<byte>.Shared.Rent(2 + DnsWire.MaxMessage);
        var stream = new NetworkStream(client, ownsSocket: true);
        try
        {
            var source = client.RemoteEndPoint!.Serialize();
            while (true)
            {
                using var idle = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                idle.CancelAfter(TcpIdleMs);
                await stream.ReadExactlyAsync(query.AsMemory(0, 2), idle.Token).ConfigureAwait(false);
                var length = BinaryPrimitives.ReadUInt16BigEndian(query);
                await stream.ReadExactlyAsync(query.AsMemory(0, length), idle.Token).ConfigureAwait(false);
                var step = Answer(query.AsSpan(0, length), answer.AsSpan(2), source, tcp: true, out var question, out var written);
                if (step == DnsStep.Dropped)
                {
                    return;
                }

                if (step == DnsStep.Forward)
                {
                    written = await ForwardAsync(query.AsMemory(0, length), question, answer.AsMemory(2), _stop.Token).ConfigureAwait(false);
                }

                if (written <= 0)
                {
                    return;
                }

                BinaryPrimitives.WriteUInt16BigEndian(answer, (ushort)written);
                await stream.WriteAsync(answer.AsMemory(0, 2 + written), _stop.Token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException or EndOfStreamException)
        {
            // Closed, idle past TcpIdleMs, reset, or the guard is stopping: the connection just ends.
        }

        finally
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            ArrayPool<byte>.Shared.Return(query);
            ArrayPool<byte>.Shared.Return(answer);
            Interlocked.Decrement(ref _tcpOpen);
        }
    }

    /// <summary>An OPT record in the additional section: its UDP size, within [512, 4096]. False when the section cannot be read.</summary>
    private static bool ReadOpt(ReadOnlySpan<byte> query, int at, ref DnsQuestion question)
    {
        var count = DnsWire.Count(query, 3);
        Span<byte> scratch = stackalloc byte[DnsWire.MaxNameText];
        for (var i = 0; i < count; i++)
        {
            if (!DnsWire.TryReadRecord(query, ref at, scratch, out _, out var rr))
            {
                return false;
            }

            if (rr.Type == DnsWire.TypeOpt)
            {
                question.Opt = true;
                if (question.UdpLimit < DnsWire.MaxMessage)
                {
                    question.UdpLimit = Math.Clamp((int)rr.Class, UdpFloor, UdpCeiling);
                }
            }
        }

        return true;
    }

    /// <summary>Letters, digits, '-', '_' in dot-separated labels (the reader already bounded the labels): what a policy pattern can name.</summary>
    private static bool IsHostName(ReadOnlySpan<byte> name)
    {
        if (name.IsEmpty)
        {
            return false;
        }

        foreach (var b in name)
        {
            if (!(char.IsAsciiLetterOrDigit((char)b) || b is (byte)'-' or (byte)'_' or (byte)'.'))
            {
                return false;
            }
        }

        return true;
    }

    private void Refuse(SocketAddress source, ReadOnlySpan<byte> name, ushort type, string reason, bool enforced)
    {
        var remote = (IPEndPoint)(source.Family == AddressFamily.InterNetwork ? Any4 : Any6).Create(source);
        _gate.RecordDnsRefusal(new ConnectionInfo(0, remote), _agent, name, type, reason, enforced);
    }

    private static SocketAddress CopyOf(SocketAddress address)
    {
        var copy = new SocketAddress(address.Family, address.Size);
        address.Buffer.CopyTo(copy.Buffer);
        return copy;
    }
}
