using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
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
/// for a cached answer. Only a forward awaits, on <see cref="DnsUpstream"/>'s few long-lived sockets
/// (a new TCP connection only when the upstream truncates). Bounds: <see cref="MaxForwardsInFlight"/>
/// upstream questions at once (more are answered SERVFAIL, as is one the upstream does not answer within
/// <c>Dns:UpstreamTimeoutMs</c>), <see cref="MaxTcpConnections"/> TCP clients, each closed after
/// <see cref="TcpIdleMs"/> without a query.
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
    private readonly DnsUpstream _exchange;
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
        _exchange = new DnsUpstream(upstream, MaxForwardsInFlight, _timeoutMs, _time, _log);
    }

    public AnswerMemory Memory => _memory;

    /// <summary>The UDP exchange with the upstream (its sockets, and the answers it dropped).</summary>
    internal DnsUpstream Upstream => _exchange;

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

        // Questions in flight are given up before the listener closes, so their clients hear SERVFAIL.
        _exchange.Dispose();
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
    [AsyncMethodBuilder(typeof(PooledValueTaskBuilder<>))]
    public async ValueTask<int> ForwardAsync(ReadOnlyMemory<byte> query, DnsQuestion question, Memory<byte> dst, CancellationToken cancellationToken)
    {
        if (Interlocked.Increment(ref _inFlight) > MaxForwardsInFlight)
        {
            Interlocked.Decrement(ref _inFlight);
            return DnsAnswers.WriteEmpty(query.Span, question.QuestionEnd, DnsWire.RcodeServFail, truncated: false, question.Opt, dst.Span);
        }

        // While the question waits it holds only a UDP-sized buffer here (1,024 waiting: 4 MiB); an upstream
        // that sends more than it was offered (DnsAnswers.UdpPayload) over UDP gets the client SERVFAIL.
        var response = ArrayPool<byte>.Shared.Rent(UdpCeiling);
        byte[]? whole = null;
        try
        {
            var got = cancellationToken.IsCancellationRequested ? -1 : await AskUdp(query.Span, question.Type, response).ConfigureAwait(false);
            var answer = response;
            if (got >= 4 && DnsWire.Truncated(DnsWire.Flags(response)))
            {
                whole = ArrayPool<byte>.Shared.Rent(DnsWire.MaxMessage);
                got = await AskTcpAsync(query, question.Type, whole, cancellationToken).ConfigureAwait(false);
                answer = whole;
            }

            return got < 0 ? DnsAnswers.WriteEmpty(query.Span, question.QuestionEnd, DnsWire.RcodeServFail, truncated: false, question.Opt, dst.Span)
                : AnswerFromUpstream(answer.AsSpan(0, got), query.Span, question, dst.Span);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(response);
            if (whole is not null)
            {
                ArrayPool<byte>.Shared.Return(whole);
            }

            Interlocked.Decrement(ref _inFlight);
        }
    }

    /// <summary>The upstream's answer rebuilt, cached and remembered, and the client's copy written into <paramref name="dst"/> (SERVFAIL when it is no answer to give).</summary>
    private int AnswerFromUpstream(ReadOnlySpan<byte> response, ReadOnlySpan<byte> query, DnsQuestion question, Span<byte> dst)
    {
        var rebuilt = ArrayPool<byte>.Shared.Rent(DnsWire.MaxMessage);
        try
        {
            var length = Rebuild(response, query, question.Type, rebuilt);
            return length < 0 ? DnsAnswers.WriteEmpty(query, question.QuestionEnd, DnsWire.RcodeServFail, truncated: false, question.Opt, dst)
                : DnsAnswers.Serve(rebuilt.AsSpan(0, length), default, null, query, question.QuestionEnd, question.Opt, question.UdpLimit, dst);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rebuilt);
        }
    }

    /// <summary>The client's question (its name as asked, <paramref name="type"/>) sent on the exchange's sockets.</summary>
    private ValueTask<int> AskUdp(ReadOnlySpan<byte> query, ushort type, byte[] response)
    {
        Span<byte> name = stackalloc byte[DnsWire.MaxNameText];
        var at = DnsWire.HeaderLength;
        DnsWire.TryReadName(query, ref at, name, out var length);
        return _exchange.AskAsync(name[..length], type, response);
    }

    /// <summary><see cref="Rebuild(ReadOnlySpan{byte}, ushort, ReadOnlySpan{byte}, ushort, byte[])"/> for the name of <paramref name="query"/> and the ID the answer carries (the exchange matched it).</summary>
    private int Rebuild(ReadOnlySpan<byte> response, ReadOnlySpan<byte> query, ushort type, byte[] into)
    {
        if (response.Length < DnsWire.HeaderLength)
        {
            return -1;
        }

        Span<byte> name = stackalloc byte[DnsWire.MaxNameText];
        var at = DnsWire.HeaderLength;
        DnsWire.TryReadName(query, ref at, name, out var length);
        return Rebuild(response, DnsWire.Id(response), name[..length], type, into);
    }

    /// <summary>The upstream's answer rebuilt into <paramref name="into"/>, cached and remembered; -1 when it is no answer to give.</summary>
    internal int Rebuild(ReadOnlySpan<byte> response, ushort id, ReadOnlySpan<byte> name, ushort type, byte[] into)
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

    /// <summary>
    /// The question again over TCP (the UDP answer was truncated), on a connection of its own: rare, so
    /// it keeps the simple shape of a socket and a timeout per question. The length of the answer, or -1.
    /// </summary>
    private async ValueTask<int> AskTcpAsync(ReadOnlyMemory<byte> query, ushort type, byte[] response, CancellationToken cancellationToken)
    {
        var ask = ArrayPool<byte>.Shared.Rent(2 + DnsWire.HeaderLength + DnsWire.MaxNameWire + 4 + 11);
        try
        {
            var askLength = WriteTcpQuery(query.Span, type, ask);
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stop.Token);
            deadline.CancelAfter(_timeoutMs);
            using var socket = new Socket(_upstream.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            await socket.ConnectAsync(_upstream, deadline.Token).ConfigureAwait(false);
            await using var stream = new NetworkStream(socket, ownsSocket: false);
            await stream.WriteAsync(ask.AsMemory(0, askLength), deadline.Token).ConfigureAwait(false);
            await stream.ReadExactlyAsync(response.AsMemory(0, 2), deadline.Token).ConfigureAwait(false);
            var length = BinaryPrimitives.ReadUInt16BigEndian(response);
            await stream.ReadExactlyAsync(response.AsMemory(0, length), deadline.Token).ConfigureAwait(false);
            return length >= DnsWire.HeaderLength && DnsWire.Id(response) == BinaryPrimitives.ReadUInt16BigEndian(ask.AsSpan(2)) ? length : -1;
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or IOException)
        {
            return -1;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(ask);
        }
    }

    /// <summary>Our query for the name of <paramref name="query"/>, with a fresh ID and the two-byte length prefix; its length.</summary>
    private static int WriteTcpQuery(ReadOnlySpan<byte> query, ushort type, Span<byte> dst)
    {
        Span<byte> name = stackalloc byte[DnsWire.MaxNameText];
        var at = DnsWire.HeaderLength;
        DnsWire.TryReadName(query, ref at, name, out var nameLength);
        var length = DnsAnswers.WriteQuery(dst[2..], (ushort)RandomNumberGenerator.GetInt32(65536), name[..nameLength], type);
        BinaryPrimitives.WriteUInt16BigEndian(dst, (ushort)length);
        return 2 + length;
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
                var query = ArrayPool<byte>.Shared.Rent(got);
                buffer.AsSpan(0, got).CopyTo(query);
                _ = ForwardUdpAsync(socket, query, got, question, CopyOf(source));
            }
        }
    }

    /// <summary>
    /// One forwarded UDP question: usually it resumes on the exchange's receive thread when the answer
    /// arrives, and the client's answer leaves from there with a blocking <c>sendto</c> (an async send
    /// would also turn the listener non-blocking, and its loop's <c>recvfrom</c> with it).
    /// </summary>
    private async Task ForwardUdpAsync(Socket socket, byte[] query, int queryLength, DnsQuestion question, SocketAddress source)
    {
        var answer = ArrayPool<byte>.Shared.Rent(UdpCeiling);
        try
        {
            var length = await ForwardAsync(query.AsMemory(0, queryLength), question, answer, _stop.Token).ConfigureAwait(false);
            if (length > 0)
            {
                socket.SendTo(answer.AsSpan(0, length), SocketFlags.None, source);
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // The client is gone (ICMP unreachable), the send buffer is full, or the guard has stopped.
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Nobody awaits this task: an unexpected failure is logged here, not left unobserved.
            ProxyLog.DnsQueryFailed(_log, e);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(answer);
            ArrayPool<byte>.Shared.Return(query);
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
