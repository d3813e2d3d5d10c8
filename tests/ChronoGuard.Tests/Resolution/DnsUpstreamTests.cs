using System.Net;
using System.Net.Sockets;
using System.Text;
using ChronoGuard.Proxy;
using ChronoGuard.Resolution;
using ChronoGuard.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace ChronoGuard.Tests.Resolution;

/// <summary>
/// The DNS guard's exchange with its upstream over real UDP sockets on 127.0.0.1, the upstream a socket
/// the test scripts (<see cref="ScriptedUpstream"/>) and the clock and timeout sweep moved by hand: an
/// answer reaches only the question it answers; forged, late and repeated answers are dropped; a
/// question never answered is given up at its deadline and not before; a thousand questions wait at once
/// with distinct IDs; sockets are replaced after their share of questions; disposing ends every question.
/// </summary>
public sealed class DnsUpstreamTests : IDisposable
{
    private const int TimeoutMs = 2000;
    private static readonly byte[] Genuine = [192, 0, 2, 1];
    private static readonly byte[] Forged = [203, 0, 113, 66];

    private readonly ScriptedUpstream _upstream = new();
    private readonly TimerTimeProvider _clock = new(new DateTimeOffset(2026, 12, 5, 0, 0, 0, TimeSpan.Zero));

    public void Dispose() => _upstream.Dispose();

    [Fact]
    public async Task An_answer_is_taken_only_with_the_ID_and_question_asked_and_only_from_the_upstream()
    {
        using var exchange = Exchange();
        var response = new byte[512];
        var answer = exchange.AskAsync("www.allowed.test"u8, DnsWire.TypeA, response);
        var asked = await _upstream.NextAsync();
        Assert.Equal(("www.allowed.test", DnsWire.TypeA), (asked.Name, asked.Type));

        // Each forgery reaches the guard's socket before the genuine answer (same path, sent first), and
        // each would be taken if only part of the match were checked.
        byte[][] forgeries =
        [
            ScriptedUpstream.AnswerTo(asked, Forged, id: (ushort)(asked.Id ^ 1)),
            ScriptedUpstream.AnswerTo(asked, Forged, id: (ushort)(asked.Id ^ 0x8000)),
            ScriptedUpstream.AnswerTo(asked, Forged, name: "www.allowed.tesu"),
            ScriptedUpstream.AnswerTo(asked, Forged, name: "evil.test"),
            ScriptedUpstream.AnswerTo(asked, Forged, type: DnsWire.TypeAaaa),
            ScriptedUpstream.AnswerTo(asked, Forged, klass: 3),
            ScriptedUpstream.AnswerTo(asked, Forged, response: false),
            asked.Message[..2],
            [],
        ];
        foreach (var forged in forgeries)
        {
            _upstream.Send(asked.From, forged);
        }

        // The right ID and question from another port: a connected socket never lets it in.
        using (var elsewhere = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp))
        {
            elsewhere.SendTo(ScriptedUpstream.AnswerTo(asked, Forged), asked.From);
        }

        // The genuine answer may repeat the name in another case.
        _upstream.Send(asked.From, ScriptedUpstream.AnswerTo(asked, Genuine, name: "WWW.Allowed.TEST"));
        var length = await answer.AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(Genuine, response[(length - 4)..length]);
        Assert.Equal(forgeries.Length, exchange.UnmatchedAnswers);
    }

    [Fact]
    public async Task A_question_never_answered_is_given_up_at_its_deadline_and_its_late_answer_dropped()
    {
        using var exchange = Exchange();
        var response = new byte[512];
        var answer = exchange.AskAsync("slow.test"u8, DnsWire.TypeA, response);
        var sweep = await _clock.NextTimerAsync(TimeSpan.FromSeconds(30));
        var asked = await _upstream.NextAsync();

        _clock.Advance(TimeSpan.FromMilliseconds(TimeoutMs - 1));
        sweep.Fire();
        Assert.False(answer.IsCompleted);
        _clock.Advance(TimeSpan.FromMilliseconds(1));
        sweep.Fire();
        Assert.True(answer.IsCompleted);
        Assert.Equal(-1, await answer);

        // The answer comes after all: dropped. The next question on that socket is answered as usual, and
        // its answer arrives behind the late one.
        _upstream.Send(asked.From, ScriptedUpstream.AnswerTo(asked, Forged));
        var next = exchange.AskAsync("slow.test"u8, DnsWire.TypeA, response);
        var again = await _upstream.NextAsync();
        Assert.Equal(asked.From, again.From);
        _upstream.Send(again.From, ScriptedUpstream.AnswerTo(again, Genuine));
        var length = await next.AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(Genuine, response[(length - 4)..length]);
        Assert.Equal(1, exchange.UnmatchedAnswers);
    }

    [Fact]
    public async Task An_upstream_that_answers_twice_is_heard_once()
    {
        using var exchange = Exchange();
        var response = new byte[512];
        var answer = exchange.AskAsync("twice.test"u8, DnsWire.TypeA, response);
        var asked = await _upstream.NextAsync();
        _upstream.Send(asked.From, ScriptedUpstream.AnswerTo(asked, Genuine));
        _upstream.Send(asked.From, ScriptedUpstream.AnswerTo(asked, Forged));
        var length = await answer.AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(Genuine, response[(length - 4)..length]);

        var other = new byte[512];
        var next = exchange.AskAsync("after.test"u8, DnsWire.TypeA, other);
        var again = await _upstream.NextAsync();
        _upstream.Send(again.From, ScriptedUpstream.AnswerTo(again, Forged));
        var otherLength = await next.AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(Forged, other[(otherLength - 4)..otherLength]);
        Assert.Equal(Genuine, response[(length - 4)..length]); // the second answer was not copied over the first
        Assert.Equal(1, exchange.UnmatchedAnswers);
    }

    [Fact]
    public async Task A_thousand_questions_wait_at_once_with_distinct_IDs_and_each_gets_its_own_answer()
    {
        const int count = 1000;
        using var exchange = Exchange(sockets: 4, capacity: count);
        var responses = new byte[count][];
        var answers = new Task<int>[count];
        var asked = new List<ScriptedUpstream.Asked>();
        for (var i = 0; i < count; i++)
        {
            responses[i] = new byte[512];
            answers[i] = exchange.AskAsync(Encoding.ASCII.GetBytes($"q{i}.test"), DnsWire.TypeA, responses[i]).AsTask();
            if (i % 100 == 99)
            {
                // In batches, so the upstream's receive buffer never holds more than it can.
                while (asked.Count <= i)
                {
                    asked.Add(await _upstream.NextAsync());
                }
            }
        }

        // Every slot is taken: one more is given up at once, never queued.
        var over = exchange.AskAsync("one.more.test"u8, DnsWire.TypeA, new byte[512]);
        Assert.True(over.IsCompleted);
        Assert.Equal(-1, await over);

        Assert.All(answers, a => Assert.False(a.IsCompleted));
        Assert.Equal(count, asked.Select(a => a.Id).Distinct().Count());
        Assert.InRange(asked.Select(a => a.From).Distinct().Count(), 1, DnsUpstream.DefaultSockets);

        // Answered out of order, each with an address that names its question.
        var order = asked.OrderBy(_ => Random.Shared.Next()).ToList();
        for (var at = 0; at < count; at += 100)
        {
            var batch = order.Skip(at).Take(100).ToList();
            foreach (var a in batch)
            {
                var i = int.Parse(a.Name[1..a.Name.IndexOf('.', StringComparison.Ordinal)], System.Globalization.CultureInfo.InvariantCulture);
                _upstream.Send(a.From, ScriptedUpstream.AnswerTo(a, [10, 0, (byte)(i >> 8), (byte)i]));
            }

            await Task.WhenAll(batch.Select(a => answers[int.Parse(a.Name[1..a.Name.IndexOf('.', StringComparison.Ordinal)], System.Globalization.CultureInfo.InvariantCulture)])).WaitAsync(TimeSpan.FromSeconds(30));
        }

        for (var i = 0; i < count; i++)
        {
            var length = await answers[i];
            Assert.Equal(new byte[] { 10, 0, (byte)(i >> 8), (byte)i }, responses[i][(length - 4)..length]);
        }

        Assert.Equal(0, exchange.UnmatchedAnswers);
    }

    [Fact]
    public async Task A_socket_is_replaced_by_one_on_a_new_port_after_its_share_of_questions()
    {
        const int share = 8;
        var exchange = Exchange(sockets: 1, questionsPerSocket: share);
        var ports = new List<int>();
        for (var i = 0; i < 5 * share; i++)
        {
            var response = new byte[512];
            var answer = exchange.AskAsync(Encoding.ASCII.GetBytes($"r{i}.test"), DnsWire.TypeA, response);
            var asked = await _upstream.NextAsync();
            ports.Add(asked.From.Port);
            _upstream.Send(asked.From, ScriptedUpstream.AnswerTo(asked, Genuine));
            var length = await answer.AsTask().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(Genuine, response[(length - 4)..length]);
        }

        // Each socket (a run of one port: a replacement opens before the old one closes, so two in a row
        // never share a port) takes its share, and at most one more sent before its replacement was in place.
        var runs = new List<int> { 1 };
        for (var i = 1; i < ports.Count; i++)
        {
            if (ports[i] == ports[i - 1])
            {
                runs[^1]++;
            }
            else
            {
                runs.Add(1);
            }
        }

        Assert.InRange(runs.Count, 5, 5);
        Assert.All(runs[..^1], run => Assert.InRange(run, share, share + 1));

        // From a thread of the pool: this test may be running on a socket's receive thread (an answer
        // resumes its asker there), and Dispose cannot wait for the thread it runs on.
        await Task.Run(exchange.Dispose);
        Assert.Equal(0, exchange.OpenSockets);
    }

    [Fact]
    public async Task Disposing_ends_every_question_in_flight_closes_every_socket_and_refuses_new_ones()
    {
        var exchange = Exchange(sockets: 4);
        var answers = new List<Task<int>>();
        for (var i = 0; i < 50; i++)
        {
            answers.Add(exchange.AskAsync(Encoding.ASCII.GetBytes($"d{i}.test"), DnsWire.TypeA, new byte[512]).AsTask());
            await _upstream.NextAsync();
        }

        Assert.All(answers, a => Assert.False(a.IsCompleted));
        await Task.Run(exchange.Dispose);
        Assert.All(await Task.WhenAll(answers).WaitAsync(TimeSpan.FromSeconds(30)), length => Assert.Equal(-1, length));
        Assert.Equal(0, exchange.OpenSockets);

        var late = exchange.AskAsync("late.test"u8, DnsWire.TypeA, new byte[512]);
        Assert.True(late.IsCompleted);
        Assert.Equal(-1, await late);
        exchange.Dispose();
    }

    [Fact]
    public async Task An_answer_longer_than_the_askers_buffer_is_given_up_not_copied_past_it()
    {
        using var exchange = Exchange();
        var response = new byte[40];
        var answer = exchange.AskAsync("long.test"u8, DnsWire.TypeA, response);
        var asked = await _upstream.NextAsync();
        _upstream.Send(asked.From, ScriptedUpstream.AnswerTo(asked, Genuine));
        Assert.Equal(-1, await answer.AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task A_name_the_query_cannot_hold_is_given_up_at_once_and_frees_its_slot()
    {
        using var exchange = Exchange(capacity: 1);
        var tooLong = exchange.AskAsync(Encoding.ASCII.GetBytes(string.Join('.', Enumerable.Repeat(new string('a', 63), 5))), DnsWire.TypeA, new byte[512]);
        Assert.True(tooLong.IsCompleted);
        Assert.Equal(-1, await tooLong);

        // The only slot is free again: the next question is sent and answered.
        var response = new byte[512];
        var answer = exchange.AskAsync("fits.test"u8, DnsWire.TypeA, response);
        var asked = await _upstream.NextAsync();
        _upstream.Send(asked.From, ScriptedUpstream.AnswerTo(asked, Genuine));
        var length = await answer.AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(Genuine, response[(length - 4)..length]);
    }

    private DnsUpstream Exchange(int sockets = 1, int capacity = DnsGuard.MaxForwardsInFlight, int questionsPerSocket = DnsUpstream.DefaultQuestionsPerSocket) =>
        new(_upstream.EndPoint, capacity, TimeoutMs, _clock, NullLogger.Instance, sockets, questionsPerSocket);
}
