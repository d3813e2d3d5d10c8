using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using ChronoGuard.Resolution;
using Microsoft.Extensions.Logging;

namespace ChronoGuard.Proxy;

/// <summary>
/// The DNS guard's questions to <c>Dns:Upstream</c> over UDP, sent on a few long-lived sockets instead of
/// one socket per question: a forward costs one <c>send</c> and, on the socket's receive thread, one
/// <c>recv</c> and the work of answering the client (the asker's continuation runs right there, see
/// <see cref="DnsUpstreamQuestion"/>), with nothing allocated per question.
/// <para>
/// An answer is taken only if it matches a question waiting on the socket it came in on: its ID, and
/// its question (name without case, type, class) repeated exactly; anything else is dropped and counted
/// (<see cref="UnmatchedAnswers"/>): a second or late answer, or someone trying to slip in a forged one.
/// A forged answer would teach the answer memory a false address for a name, which is what transparent
/// capture believes, so the entropy a forger must guess is kept up: a 16-bit ID drawn from a
/// cryptographic generator and never reused while a question holding it waits; the source port, one of
/// <see cref="DefaultSockets"/> connected sockets whose ports the kernel picks at random (the kernel
/// drops datagrams from any address but the upstream's on a connected socket); and each socket retired
/// after <see cref="DefaultQuestionsPerSocket"/> questions for a fresh one on a new random port, so a
/// port learnt (by ICMP side channels, say) serves a forger for a few thousand questions, not for the
/// life of the process. A socket per question gave a fresh port every time, at the price of two system
/// calls, a thread-pool hop and several allocations per question; 16 bits plus a few thousand ports
/// rotated is the trade (the case of the name is not randomised: not every upstream repeats it).
/// </para>
/// <para>
/// Timeouts take no timer per question: one sweep (a timer armed only while questions wait, every
/// <c>timeout / 8</c>) gives up those past their deadline. Bounds: <c>capacity</c> questions at once
/// (the guard's <see cref="DnsGuard.MaxForwardsInFlight"/>; more get -1), a table of 65,536 slot numbers
/// (256 KiB) for the IDs, <see cref="DefaultSockets"/> sockets and threads (briefly one more for each
/// socket being retired while its last answers come back).
/// </para>
/// </summary>
internal sealed class DnsUpstream : IDisposable
{
    public const int DefaultSockets = 4;
    public const int DefaultQuestionsPerSocket = 4096;

    private readonly IPEndPoint _upstream;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly long _timeoutTicks;
    private readonly TimeSpan _sweepPeriod;
    private readonly int _questionsPerSocket;
    private readonly DnsUpstreamQuestion?[] _slots;
    private readonly int[] _byId = new int[65536];
    private readonly DnsUpstreamSocket?[] _sockets;
    private readonly List<DnsUpstreamSocket> _live = [];
    private readonly Lock _open = new();
    private ITimer? _sweep;
    private bool _opened;
    private int _sweepArmed;
    private int _waiting;
    private int _hint;
    private int _disposed;
    private long _unmatched;

    public DnsUpstream(IPEndPoint upstream, int capacity, int timeoutMs, TimeProvider time, ILogger log, int sockets = DefaultSockets, int questionsPerSocket = DefaultQuestionsPerSocket)
    {
        _upstream = upstream;
        _time = time;
        _log = log;
        _timeoutTicks = Math.Max(1, timeoutMs * time.TimestampFrequency / 1000);
        _sweepPeriod = TimeSpan.FromMilliseconds(Math.Clamp(timeoutMs / 8, 5, 250));
        _questionsPerSocket = questionsPerSocket;
        _slots = new DnsUpstreamQuestion?[capacity];
        _sockets = new DnsUpstreamSocket?[sockets];
    }

    /// <summary>Answers dropped: no question waiting with their ID on their socket, or another question.</summary>
    public long UnmatchedAnswers => Volatile.Read(ref _unmatched);

    /// <summary>Sockets open (each with its receive thread), retired ones still receiving included.</summary>
    public int OpenSockets
    {
        get
        {
            lock (_open)
            {
                return _live.Count;
            }
        }
    }

    /// <summary>
    /// Sends (<paramref name="name"/>, <paramref name="type"/>) upstream; the result is the length of
    /// its answer, copied into <paramref name="response"/>, or -1: no answer in time, an answer longer
    /// than <paramref name="response"/>, the socket failed, every slot is taken, or the exchange is disposed.
    /// </summary>
    public ValueTask<int> AskAsync(ReadOnlySpan<byte> name, ushort type, byte[] response)
    {
        if (Volatile.Read(ref _disposed) != 0 || !Open())
        {
            return new ValueTask<int>(-1);
        }

        var question = Claim();
        if (question is null)
        {
            return new ValueTask<int>(-1);
        }

        // Filling: no completer touches the slot until it is published as waiting below.
        Span<byte> random = stackalloc byte[4];
        RandomNumberGenerator.Fill(random);
        var id = (ushort)(random[0] | (random[1] << 8));
        while (Interlocked.CompareExchange(ref _byId[id], question.Index + 1, 0) != 0)
        {
            RandomNumberGenerator.Fill(random[..2]);
            id = (ushort)(random[0] | (random[1] << 8)); // held by a question still waiting
        }

        question.Id = id;
        question.AskLength = DnsAnswers.WriteQuery(question.Ask, id, name, type);
        var end = DnsWire.HeaderLength;
        DnsWire.TrySkipName(question.Ask, ref end);
        question.QuestionEnd = end + 4;
        question.Response = response;
        question.Deadline = _time.GetTimestamp() + _timeoutTicks;
        var socket = question.AskLength < 0 ? null : Carry(random[2] % _sockets.Length);
        if (socket is null)
        {
            // Disposed meanwhile (or a name the query cannot hold, which the guard's reader never gives).
            Interlocked.Exchange(ref _byId[id], 0);
            question.Response = null;
            Volatile.Write(ref question.State, question.State & ~DnsUpstreamQuestion.PhaseMask);
            return new ValueTask<int>(-1);
        }

        question.Socket = socket;
        var version = question.Version;
        var state = (question.State & ~DnsUpstreamQuestion.PhaseMask) | DnsUpstreamQuestion.Waiting;
        Interlocked.Exchange(ref question.State, state);
        Interlocked.Increment(ref _waiting);
        ArmSweep();
        if (Volatile.Read(ref _disposed) != 0)
        {
            // Disposed while this one was filled: its sweep of the slots may have passed this one already.
            Complete(question, state, default, -1);
            return new ValueTask<int>(question, version);
        }

        Send(question, state, socket);
        return new ValueTask<int>(question, version);
    }

    /// <summary>Gives up every waiting question (-1), closes the sockets and waits for their threads (but the one it runs on, if any).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _sweep?.Dispose();
        foreach (var question in _slots)
        {
            if (question is not null)
            {
                var state = Volatile.Read(ref question.State);
                if (DnsUpstreamQuestion.Phase(state) == DnsUpstreamQuestion.Waiting)
                {
                    Complete(question, state, default, -1);
                }
            }
        }

        DnsUpstreamSocket[] live;
        lock (_open)
        {
            live = [.. _live];
        }

        foreach (var socket in live)
        {
            socket.Close();
        }

        foreach (var socket in live)
        {
            if (socket.Thread is { } thread && thread != Thread.CurrentThread)
            {
                thread.Join();
            }
        }
    }

    /// <summary>The sockets and the sweep, made by the first question (a guard that never forwards opens none).</summary>
    private bool Open()
    {
        if (Volatile.Read(ref _opened))
        {
            return true;
        }

        lock (_open)
        {
            if (_opened)
            {
                return true;
            }

            if (_disposed != 0)
            {
                return false;
            }

            try
            {
                for (var i = 0; i < _sockets.Length; i++)
                {
                    _sockets[i] ??= StartSocket(i);
                }
            }
            catch (SocketException e)
            {
                ProxyLog.DnsReceiveFailed(_log, "upstream UDP", e.SocketErrorCode.ToString());
                return false;
            }

            _sweep = _time.CreateTimer(static s => ((DnsUpstream)s!).Sweep(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            Volatile.Write(ref _opened, true);
            return true;
        }
    }

    /// <summary>A new socket with its receive thread; called holding <see cref="_open"/>.</summary>
    private DnsUpstreamSocket StartSocket(int index)
    {
        var socket = new DnsUpstreamSocket(_upstream, index);
        var thread = new Thread(() => Receive(socket)) { IsBackground = true, Name = "cg-dns-upstream" };
        socket.Thread = thread;
        _live.Add(socket);
        thread.UnsafeStart();
        return socket;
    }

    /// <summary>A free slot, now filling; null when all are taken.</summary>
    private DnsUpstreamQuestion? Claim()
    {
        var start = Interlocked.Increment(ref _hint);
        for (var i = 0; i < _slots.Length; i++)
        {
            var index = (int)((uint)(start + i) % (uint)_slots.Length);
            var question = Volatile.Read(ref _slots[index]);
            if (question is null)
            {
                var made = new DnsUpstreamQuestion { Index = index };
                question = Interlocked.CompareExchange(ref _slots[index], made, null) ?? made;
            }

            var state = Volatile.Read(ref question.State);
            if (DnsUpstreamQuestion.Phase(state) == DnsUpstreamQuestion.Free
                && Interlocked.CompareExchange(ref question.State, state + DnsUpstreamQuestion.OneQuestion + DnsUpstreamQuestion.Filling, state) == state)
            {
                return question;
            }
        }

        return null;
    }

    /// <summary>The socket at <paramref name="index"/>, counted as carrying one more question; null once disposed.</summary>
    private DnsUpstreamSocket? Carry(int index)
    {
        while (Volatile.Read(ref _disposed) == 0)
        {
            // A socket closes only after its replacement is in place: read again and take that one.
            if (Volatile.Read(ref _sockets[index]) is { } socket && socket.TryCarry())
            {
                return socket;
            }
        }

        return null;
    }

    private void Send(DnsUpstreamQuestion question, long state, DnsUpstreamSocket socket)
    {
        socket.CountSent();
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                socket.Socket.Send(question.Ask.AsSpan(0, question.AskLength), SocketFlags.None);
                return;
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused && attempt == 0)
            {
                // An ICMP "port unreachable" for an earlier question, reported on this send: send again.
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                Complete(question, state, default, -1);
                return;
            }
        }
    }

    /// <summary>
    /// The receive loop of one socket, on its own thread with blocking <c>recv</c> (as the guard's own UDP
    /// loop): the kernel wakes this thread with the answer, and the client's answer is sent from it.
    /// </summary>
    private void Receive(DnsUpstreamSocket socket)
    {
        var buffer = GC.AllocateUninitializedArray<byte>(DnsWire.MaxMessage);
        try
        {
            while (true)
            {
                int got;
                try
                {
                    got = socket.Socket.Receive(buffer, SocketFlags.None);
                }
                catch (SocketException e)
                {
                    if (socket.IsClosed)
                    {
                        return;
                    }

                    if (e.SocketErrorCode != SocketError.ConnectionRefused)
                    {
                        ProxyLog.DnsReceiveFailed(_log, "upstream UDP", e.SocketErrorCode.ToString());
                    }

                    continue; // "port unreachable" for an earlier question: its timeout will say so
                }
                catch (ObjectDisposedException)
                {
                    return;
                }

                if (got == 0 && socket.IsClosed)
                {
                    return; // shut down by Close or by its last question
                }

                if (!Match(socket, buffer.AsSpan(0, got)))
                {
                    Interlocked.Increment(ref _unmatched);
                }

                if (socket.Sent >= _questionsPerSocket && !socket.IsRetired)
                {
                    Replace(socket);
                }
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A bug met by one answer must not leave the questions on this socket waiting for nothing:
            // they time out; the socket is replaced so later questions have a receiver.
            ProxyLog.DnsQueryFailed(_log, e);
            Replace(socket);
        }
        finally
        {
            socket.Socket.Dispose();
            lock (_open)
            {
                _live.Remove(socket);
            }
        }
    }

    /// <summary>Completes the question <paramref name="answer"/> answers; false when none waiting on <paramref name="socket"/> does.</summary>
    private bool Match(DnsUpstreamSocket socket, ReadOnlySpan<byte> answer)
    {
        if (answer.Length < DnsWire.HeaderLength)
        {
            return false;
        }

        var flags = DnsWire.Flags(answer);
        if (!DnsWire.IsResponse(flags) || DnsWire.Opcode(flags) != 0 || DnsWire.Count(answer, 0) != 1)
        {
            return false;
        }

        var id = DnsWire.Id(answer);
        var slot = Volatile.Read(ref _byId[id]);
        if (slot == 0)
        {
            return false;
        }

        // Read between the state and the compare-exchange: if the slot moved on to another question
        // meanwhile, the fields may be that one's, but then the exchange fails.
        var question = _slots[slot - 1]!;
        var state = Volatile.Read(ref question.State);
        if (DnsUpstreamQuestion.Phase(state) != DnsUpstreamQuestion.Waiting || question.Socket != socket || question.Id != id)
        {
            return false;
        }

        var end = question.QuestionEnd;
        if (answer.Length < end || !SameQuestion(answer[DnsWire.HeaderLength..end], question.Ask.AsSpan(DnsWire.HeaderLength, end - DnsWire.HeaderLength)))
        {
            return false;
        }

        return Complete(question, state, answer, answer.Length);
    }

    /// <summary>The name without case (length bytes are below 64, so only letters fold), type and class exactly.</summary>
    private static bool SameQuestion(ReadOnlySpan<byte> answered, ReadOnlySpan<byte> asked) =>
        Ascii.EqualsIgnoreCase(answered[..^4], asked[..^4]) && answered[^4..].SequenceEqual(asked[^4..]);

    /// <summary>
    /// Ends the question if it still is as <paramref name="state"/> says: frees its ID, copies the answer
    /// and runs its asker's continuation. False when someone else ended it first.
    /// </summary>
    private bool Complete(DnsUpstreamQuestion question, long state, ReadOnlySpan<byte> answer, int length)
    {
        if (Interlocked.CompareExchange(ref question.State, (state & ~DnsUpstreamQuestion.PhaseMask) | DnsUpstreamQuestion.Done, state) != state)
        {
            return false;
        }

        Interlocked.CompareExchange(ref _byId[question.Id], 0, question.Index + 1);
        if (length > question.Response!.Length)
        {
            length = -1;
        }
        else if (length > 0)
        {
            answer.CopyTo(question.Response);
        }

        Interlocked.Decrement(ref _waiting);
        question.Socket?.Done();
        question.SetResult(length);
        return true;
    }

    /// <summary>Gives up the questions past their deadline; disarms itself when none waits.</summary>
    private void Sweep()
    {
        var now = _time.GetTimestamp();
        foreach (var question in _slots)
        {
            if (question is not null)
            {
                var state = Volatile.Read(ref question.State);
                if (DnsUpstreamQuestion.Phase(state) == DnsUpstreamQuestion.Waiting && now - question.Deadline >= 0)
                {
                    Complete(question, state, default, -1);
                }
            }
        }

        if (Volatile.Read(ref _waiting) == 0 && _disposed == 0)
        {
            // Disarmed before the flag is cleared, and the count read after: a question that arrives in
            // between sees the flag clear and arms it again (AskAsync counts itself before it looks).
            ChangeSweep(Timeout.InfiniteTimeSpan);
            Interlocked.Exchange(ref _sweepArmed, 0);
            if (Volatile.Read(ref _waiting) != 0)
            {
                ArmSweep();
            }
        }
    }

    private void ArmSweep()
    {
        if (Volatile.Read(ref _sweepArmed) == 0 && Interlocked.Exchange(ref _sweepArmed, 1) == 0)
        {
            ChangeSweep(_sweepPeriod);
        }
    }

    private void ChangeSweep(TimeSpan period)
    {
        try
        {
            _sweep?.Change(period, period);
        }
        catch (ObjectDisposedException)
        {
            // Disposed meanwhile: Dispose gives up every waiting question itself.
        }
    }

    /// <summary>Puts a fresh socket (a new random port) in <paramref name="old"/>'s place and retires it.</summary>
    private void Replace(DnsUpstreamSocket old)
    {
        lock (_open)
        {
            if (_disposed != 0 || !ReferenceEquals(_sockets[old.Index], old))
            {
                return;
            }

            try
            {
                Volatile.Write(ref _sockets[old.Index], StartSocket(old.Index));
            }
            catch (SocketException e)
            {
                ProxyLog.DnsReceiveFailed(_log, "upstream UDP", e.SocketErrorCode.ToString());
                return; // keep using the old one
            }
        }

        old.Retire();
    }
}
