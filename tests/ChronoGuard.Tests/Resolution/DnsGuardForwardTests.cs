using System.Net;
using System.Net.Sockets;
using ChronoGuard.Proxy;
using ChronoGuard.Resolution;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Resolution;

/// <summary>
/// The DNS guard's forwards when the upstream misbehaves, with real clients (dig, raw UDP and TCP
/// sockets) against the real guard on 127.0.0.1 and an upstream the test scripts
/// (<see cref="ScriptedUpstream"/>, which answers nothing by itself): silence is SERVFAIL after
/// Dns:UpstreamTimeoutMs, no more than <see cref="DnsGuard.MaxForwardsInFlight"/> questions wait, and a
/// guard disposed with questions in flight ends every one of them.
/// </summary>
public sealed class DnsGuardForwardTests : IDisposable
{
    private readonly ScriptedUpstream _upstream = new();
    private readonly PolicyEngines _policy = new("""
        { "version": 1, "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
          "policies": [ { "name": "p", "allowedDomains": ["*.allowed.test"] } ] }
        """);

    public void Dispose()
    {
        _upstream.Dispose();
        _policy.Dispose();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task An_upstream_that_never_answers_gets_the_client_SERVFAIL(bool tcp)
    {
        await ExternalTools.EnsureAsync("dig");
        await using var guard = StartGuard(timeoutMs: 200);
        var dig = ExternalTools.RunAsync("dig", ["@127.0.0.1", "-p", guard.LocalEndpoint.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "+tries=1", "+time=30", tcp ? "+tcp" : "+notcp", "silent.allowed.test", "A"], TimeSpan.FromSeconds(60));
        Assert.Equal("silent.allowed.test", (await _upstream.NextAsync()).Name);
        var (code, output) = await dig;
        Assert.True(code == 0, output);
        Assert.Contains("status: SERVFAIL", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Disposing_the_guard_answers_each_UDP_question_in_flight_SERVFAIL_and_ends_TCP_clients()
    {
        var guard = StartGuard(timeoutMs: 600_000);
        var clients = new List<Socket>();
        try
        {
            for (var i = 0; i < 20; i++)
            {
                var client = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
                clients.Add(client);
                client.Connect(guard.LocalEndpoint);
                await client.SendAsync(DnsMessages.Query((ushort)(0x100 + i), $"u{i}.allowed.test", DnsWire.TypeA));
                await _upstream.NextAsync();
            }

            using var tcp = new TcpClient();
            await tcp.ConnectAsync(guard.LocalEndpoint);
            var query = DnsMessages.Query(0x200, "t.allowed.test", DnsWire.TypeA);
            await tcp.GetStream().WriteAsync((byte[])[(byte)(query.Length >> 8), (byte)query.Length, .. query]);
            await _upstream.NextAsync();

            await guard.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));

            var buffer = new byte[512];
            for (var i = 0; i < clients.Count; i++)
            {
                var got = await clients[i].ReceiveAsync(buffer).WaitAsync(TimeSpan.FromSeconds(30));
                Assert.True(got >= DnsWire.HeaderLength);
                Assert.Equal((0x100 + i, DnsWire.RcodeServFail), (DnsMessages.ReadU16(buffer, 0), buffer[3] & 0xF));
            }

            int read;
            try
            {
                read = await tcp.GetStream().ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
            }
            catch (IOException)
            {
                read = 0; // reset rather than closed: ended all the same
            }

            Assert.Equal(0, read);
        }
        finally
        {
            await guard.DisposeAsync();
            clients.ForEach(c => c.Dispose());
        }
    }

    [Fact]
    public async Task No_more_than_MaxForwardsInFlight_questions_wait_and_disposing_ends_them_all()
    {
        var guard = StartGuard(timeoutMs: 600_000);
        var source = new IPEndPoint(IPAddress.Loopback, 40000).Serialize();
        var forwards = new List<Task<int>>();
        var answers = new List<byte[]>();
        try
        {
            for (var i = 0; i <= DnsGuard.MaxForwardsInFlight; i++)
            {
                var query = DnsMessages.Query((ushort)i, $"f{i}.allowed.test", DnsWire.TypeA);
                var answer = new byte[512];
                Assert.Equal(DnsStep.Forward, guard.Answer(query, answer, source, tcp: false, out var question, out _));
                answers.Add(answer);
                forwards.Add(guard.ForwardAsync(query, question, answer, CancellationToken.None).AsTask());
            }

            // The one past the bound is answered at once, before anything reached the upstream.
            Assert.True(forwards[^1].IsCompleted);
            Assert.Equal(DnsWire.RcodeServFail, answers[^1][3] & 0xF);
            Assert.All(forwards[..^1], f => Assert.False(f.IsCompleted));

            await guard.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));
            await Task.WhenAll(forwards).WaitAsync(TimeSpan.FromSeconds(30));
            for (var i = 0; i < forwards.Count; i++)
            {
                Assert.Equal((i, DnsWire.RcodeServFail), (DnsMessages.ReadU16(answers[i], 0), answers[i][3] & 0xF));
            }

            Assert.Equal(0, guard.Upstream.OpenSockets);
        }
        finally
        {
            await guard.DisposeAsync();
        }
    }

    private DnsGuard StartGuard(int timeoutMs)
    {
        var guard = new DnsGuard(new DnsOptions { UpstreamTimeoutMs = timeoutMs }, "bot", _upstream.EndPoint, new PolicyGate(_policy.Engine, TimeProvider.System), new AnswerMemory());
        guard.Start(new IPEndPoint(IPAddress.Loopback, 0));
        return guard;
    }
}
