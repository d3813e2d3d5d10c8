using System.Threading.Tasks.Sources;
using ChronoGuard.Resolution;

namespace ChronoGuard.Proxy;

/// <summary>
/// One of <see cref="DnsUpstream"/>'s fixed slots: a question sent upstream and the awaitable its asker
/// waits on, reused question after question (no task, no timer, no cancellation source per question).
/// <para>
/// <see cref="State"/> is the slot's whole life in one word, so that whoever completes it (the answer's
/// receive thread, the timeout sweep, <see cref="DnsUpstream.Dispose"/>) wins with one compare-exchange
/// and a completer that read the slot for an earlier question cannot complete the next one: the high
/// bits count the questions the slot has held, the low two say free, being filled, waiting, or done.
/// </para>
/// </summary>
internal sealed class DnsUpstreamQuestion : IValueTaskSource<int>
{
    public const long Free = 0;
    public const long Filling = 1;
    public const long Waiting = 2;
    public const long Done = 3;
    public const long PhaseMask = 3;
    public const long OneQuestion = 4;

    /// <summary>The query as sent: id, the question the answer must repeat, the OPT record.</summary>
    public readonly byte[] Ask = new byte[DnsWire.HeaderLength + DnsWire.MaxNameWire + 4 + 11];

    private ManualResetValueTaskSourceCore<int> _core;

    /// <summary>Sequence and phase (see the class): changed only by compare-exchange or by its owner.</summary>
    public long State;

    public int AskLength;

    /// <summary>Offset just past the question in <see cref="Ask"/>.</summary>
    public int QuestionEnd;

    public ushort Id;

    /// <summary>Its place in the exchange's slots (+1 is what the id table holds).</summary>
    public int Index;

    /// <summary><see cref="System.Diagnostics.Stopwatch"/>-style timestamp (of the guard's clock) after which the question is given up.</summary>
    public long Deadline;

    public DnsUpstreamSocket? Socket;

    /// <summary>Where the answer is copied: the asker's buffer.</summary>
    public byte[]? Response;

    public DnsUpstreamQuestion()
    {
        // The completer runs the asker's continuation on its own thread: the answer goes back to the
        // client straight from the receive thread, with no hop through the thread pool.
        _core.RunContinuationsAsynchronously = false;
    }

    public short Version => _core.Version;

    public static long Phase(long state) => state & PhaseMask;

    public void SetResult(int length) => _core.SetResult(length);

    /// <summary>The answer's length (-1: none), read once by the asker; the slot is then free for the next question.</summary>
    public int GetResult(short token)
    {
        var length = _core.GetResult(token);
        Response = null;
        Socket = null;
        _core.Reset();
        Volatile.Write(ref State, (State & ~PhaseMask) | Free);
        return length;
    }

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
