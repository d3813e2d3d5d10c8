using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using ChronoGuard.Audit;
using ChronoGuard.Proxy;
using ChronoGuard.Resolution;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Resolution;

/// <summary>
/// SPEC §10's DNS guard with real clients (dig, kdig) against the real guard on 127.0.0.1, a real policy
/// and a real audit log, its upstream a fake resolver on 127.0.0.1 that the test starts and that tells
/// which questions reached it (never the machine's resolver).
/// </summary>
public sealed partial class DnsGuardTests : IAsyncLifetime, IDisposable
{
    private const string Policy = """
        { "version": 1,
          "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] }, { "id": "other", "tokenSha256": "$TOKEN", "policies": ["q"] } ],
          "policies": [
            { "name": "p", "allowedDomains": ["allowed.test", "*.allowed.test", "ssh.test:22"], "blockedDomains": ["blocked.allowed.test"],
              "rules": [ { "name": "ruled", "action": "allow", "when": [ { "field": "domain", "op": "ends_with", "value": ".ruled.test" } ] } ] },
            { "name": "q", "allowedDomains": ["other.test"], "dnsTypes": ["TXT"] } ] }
        """;

    private static readonly string[] Zone =
    [
        "allowed.test|A|300|127.0.0.2",
        "allowed.test|AAAA|300|::2",
        "allowed.test|TXT|300|\"v=spf1 -all\"",
        "allowed.test|HTTPS|300|1 . alpn=h2 ech=AEX+DQBBpQAgACCgd2Y5GHnBLNkS7lSUh3l8yeCCqXJvYQ7hDxHjYFBQYgAEAAEAAQASY2xvdWRmbGFyZS1lY2guY29tAAA=",
        "www.allowed.test|CNAME|300|edge.cdn.test.",
        "edge.cdn.test|A|20|127.0.0.3",
        "short.allowed.test|A|1|127.0.0.4",
        "ssh.test|A|300|127.0.0.5",
        "x.ruled.test|A|300|127.0.0.6",
        "evil.test|A|300|127.0.0.66",
        "other.test|TXT|300|\"hello\"",
        .. Enumerable.Range(1, 100).Select(i => $"big.allowed.test|A|300|127.0.1.{i}"),
    ];

    private readonly TempDir _dir = new();
    private PolicyEngines _policy = null!;
    private FakeResolver _upstream = null!;
    private AuditWriter _audit = null!;
    private PolicyGate _gate = null!;
    private DnsGuard _guard = null!;
    private readonly AnswerMemory _memory = new();

    public async Task InitializeAsync()
    {
        await ExternalTools.EnsureAsync("dig", "kdig");
        _upstream = await FakeResolver.StartAsync(Zone);
        _policy = new PolicyEngines(Policy);
        _audit = AuditWriter.Open(new AuditOptions { Directory = _dir.File("audit") }, TimeProvider.System);
        _gate = new PolicyGate(_policy.Engine, TimeProvider.System, _audit);
        _guard = StartGuard("bot");
    }

    public async Task DisposeAsync()
    {
        // The resolver process goes whatever else fails: a test must leave no process behind.
        try
        {
            await _guard.DisposeAsync();
            _audit.Dispose();
        }
        finally
        {
            await _upstream.DisposeAsync();
        }
    }

    public void Dispose()
    {
        _policy.Dispose();
        _dir.Dispose();
    }

    [Fact]
    public async Task An_allowed_name_is_forwarded_answered_and_remembered_then_answered_from_the_cache()
    {
        var first = await DigAsync("allowed.test", "A");
        Assert.Equal("NOERROR", Status(first));
        Assert.Contains("127.0.0.2", Answers(first));
        await _upstream.WaitForAsync("udp allowed.test A");

        var now = TimeProvider.System.GetUtcNow().ToUnixTimeMilliseconds();
        Assert.True(_memory.WasAnswered("bot", "allowed.test", IPAddress.Parse("127.0.0.2"), now));
        Assert.True(_memory.WasAnswered("bot", "ALLOWED.test.", IPAddress.Parse("::ffff:127.0.0.2"), now));
        Assert.False(_memory.WasAnswered("other", "allowed.test", IPAddress.Parse("127.0.0.2"), now));
        Assert.False(_memory.WasAnswered("bot", "allowed.test", IPAddress.Parse("127.0.0.9"), now));
        Assert.True(_memory.TryGetName("bot", IPAddress.Parse("127.0.0.2"), now, out var name));
        Assert.Equal("allowed.test", name);

        var second = await DigAsync("ALLOWED.test", "A");
        Assert.Equal("NOERROR", Status(second));
        Assert.Contains("127.0.0.2", Answers(second));
        // The question's case comes back as asked (clients that randomise it check).
        Assert.Contains("ALLOWED.test.", second, StringComparison.Ordinal);
        Assert.Single(_upstream.Questions, q => q == "udp allowed.test A");
    }

    [Fact]
    public async Task A_refused_name_is_NXDOMAIN_never_reaches_the_upstream_and_is_recorded()
    {
        foreach (var refused in new[] { "c2VjcmV0.evil.test", "blocked.allowed.test", "evil.test", "ssh.test.evil.test" })
        {
            Assert.Equal("NXDOMAIN", Status(await DigAsync(refused, "A")));
        }

        // A port-scoped pattern and an allow rule's domain condition let a name be resolved too.
        Assert.Contains("127.0.0.5", Answers(await DigAsync("ssh.test", "A")));
        Assert.Contains("127.0.0.6", Answers(await DigAsync("x.ruled.test", "A")));
        await _upstream.WaitForAsync("udp x.ruled.test A");
        Assert.DoesNotContain(_upstream.Questions, q => q.Contains("evil", StringComparison.Ordinal) || q.Contains("blocked", StringComparison.Ordinal));

        var records = await RecordsAsync();
        foreach (var refused in new[] { "c2VjcmV0.evil.test", "blocked.allowed.test", "evil.test", "ssh.test.evil.test" })
        {
            var r = Assert.Single(records, r => r.Host == refused);
            Assert.Equal(("DNS", "BLOCK", ProxyReasons.DnsNameRefused, 403, "bot", "A", "127.0.0.1"), (r.Method, r.Decision, r.Reason, r.Status, r.Agent, r.Path, r.SourceIp));
        }
    }

    [Fact]
    public async Task A_TXT_query_carrying_data_is_refused_and_recorded_unless_a_policy_lists_TXT()
    {
        var leaked = "ZXhmaWx0cmF0ZWQ.allowed.test";
        Assert.Equal("NXDOMAIN", Status(await DigAsync(leaked, "TXT")));
        Assert.Equal("NXDOMAIN", Status(await DigAsync("allowed.test", "TXT")));
        Assert.Equal("NXDOMAIN", Status(await DigAsync("allowed.test", "NULL")));
        Assert.Equal("NXDOMAIN", Status(await DigAsync("allowed.test", "ANY")));
        Assert.Contains("127.0.0.2", Answers(await DigAsync("allowed.test", "A")));
        await _upstream.WaitForAsync("udp allowed.test A");
        Assert.DoesNotContain(_upstream.Questions, q => !q.EndsWith(" A", StringComparison.Ordinal));

        // The other agent's policy lists TXT: its guard answers it.
        await using (var other = StartGuard("other"))
        {
            var answered = await DigAsync("other.test", "TXT", other);
            Assert.Equal("NOERROR", Status(answered));
            Assert.Contains("\"hello\"", answered, StringComparison.Ordinal);
        }

        var records = await RecordsAsync();
        var txt = Assert.Single(records, r => r.Host == leaked);
        Assert.Equal(("DNS", "BLOCK", ProxyReasons.DnsTypeRefused, "TXT"), (txt.Method, txt.Decision, txt.Reason, txt.Path));
        Assert.Contains(records, r => r.Host == "allowed.test" && r.Path == "NULL");
        Assert.Contains(records, r => r.Host == "allowed.test" && r.Path == "ANY");

    }

    [Fact]
    public async Task Over_TCP_a_CNAME_chain_is_answered_and_its_addresses_remembered_for_the_asked_name()
    {
        await ExternalTools.EnsureAsync("kdig");
        var (code, output) = await ExternalTools.RunAsync("kdig", [$"@{_guard.LocalEndpoint.Address}", "-p", Port(), "+tcp", "www.allowed.test", "A"], TimeSpan.FromSeconds(30));
        Assert.True(code == 0, output);
        Assert.Contains("NOERROR", output, StringComparison.Ordinal);
        Assert.Matches(@"www\.allowed\.test\.\s+\d+\s+IN\s+CNAME\s+edge\.cdn\.test\.", output);
        Assert.Matches(@"edge\.cdn\.test\.\s+\d+\s+IN\s+A\s+127\.0\.0\.3", output);
        var now = TimeProvider.System.GetUtcNow().ToUnixTimeMilliseconds();
        Assert.True(_memory.WasAnswered("bot", "www.allowed.test", IPAddress.Parse("127.0.0.3"), now));

        // TTL 20 s upstream: remembered at least Dns:MinTtlSeconds (30 s).
        Assert.True(_memory.WasAnswered("bot", "www.allowed.test", IPAddress.Parse("127.0.0.3"), now + 25_000));
        Assert.False(_memory.WasAnswered("bot", "www.allowed.test", IPAddress.Parse("127.0.0.3"), now + 31_000));

        (code, output) = await ExternalTools.RunAsync("kdig", [$"@{_guard.LocalEndpoint.Address}", "-p", Port(), "+tcp", "evil.test", "A"], TimeSpan.FromSeconds(30));
        Assert.Contains("NXDOMAIN", output, StringComparison.Ordinal);
        Assert.DoesNotContain(_upstream.Questions, q => q.Contains("evil", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_answer_too_large_for_UDP_is_truncated_and_whole_over_TCP()
    {
        // The upstream truncates over UDP (100 addresses do not fit 1232 bytes): the guard asks again over TCP,
        // and dig, told TC by the guard, asks the guard again over TCP.
        var output = await DigAsync("big.allowed.test", "A");
        Assert.Equal(100, Answers(output).Count);
        await _upstream.WaitForAsync("tcp big.allowed.test A");
        Assert.Contains("Truncated, retrying in TCP mode", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task HTTPS_answers_lose_their_ech_parameter()
    {
        var (code, output) = await ExternalTools.RunAsync("kdig", [$"@{_guard.LocalEndpoint.Address}", "-p", Port(), "allowed.test", "HTTPS"], TimeSpan.FromSeconds(30));
        Assert.True(code == 0, output);
        Assert.Matches(@"allowed\.test\.\s+\d+\s+IN\s+HTTPS\s+1 \. alpn=h2", output);
        Assert.DoesNotContain("ech", output, StringComparison.Ordinal);
        await _upstream.WaitForAsync("udp allowed.test HTTPS");
    }

    [Fact]
    public async Task In_observe_mode_a_refused_name_is_answered_and_recorded_as_not_enforced()
    {
        using var observe = new PolicyEngines(Policy.Replace("\"version\": 1,", "\"version\": 1, \"mode\": \"observe\",", StringComparison.Ordinal));
        var gate = new PolicyGate(observe.Engine, TimeProvider.System, _audit);
        await using (var guard = new DnsGuard(new DnsOptions(), "bot", _upstream.EndPoint, gate, _memory))
        {
            guard.Start(new IPEndPoint(IPAddress.Loopback, 0));
            Assert.Contains("127.0.0.66", Answers(await DigAsync("evil.test", "A", guard)));
        }

        var record = Assert.Single(await RecordsAsync(), r => r.Host == "evil.test");
        Assert.Equal(("BLOCK", ProxyReasons.DnsNameRefused, false), (record.Decision, record.Reason, record.Enforced));
    }

    [Fact]
    public async Task A_flood_of_refused_questions_is_recorded_up_to_the_limit_then_counted()
    {
        // One second on the gate's clock, whatever the flood takes: the limit is per source and second.
        var clock = new ManualTimeProvider(new DateTimeOffset(2026, 12, 5, 1, 0, 0, TimeSpan.Zero));
        var gate = new PolicyGate(_policy.Engine, clock, _audit);
        await using (var guard = new DnsGuard(new DnsOptions(), "bot", _upstream.EndPoint, gate, _memory, clock))
        {
            guard.Start(new IPEndPoint(IPAddress.Loopback, 0));
            using var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            udp.Connect(guard.LocalEndpoint);
            var buffer = new byte[512];
            for (var i = 0; i < 50; i++)
            {
                await udp.SendAsync(DnsMessages.Query((ushort)i, $"chunk{i}.evil.test", DnsWire.TypeA));
                await udp.ReceiveAsync(buffer).WaitAsync(TimeSpan.FromSeconds(30));
                Assert.Equal(DnsWire.RcodeNxDomain, buffer[3] & 0xF);
            }

            gate.FlushSuppressed();
        }

        await RecordsAsync(); // closes the writer
        var all = AuditReader.ReadDirectory(_dir.File("audit")).Select(i => i.Entry!).ToList();
        Assert.Equal(20, all.Count(r => r.Kind == AuditKind.Decision && r.Method == "DNS"));
        var count = Assert.Single(all, r => r.Kind == AuditKind.System && r.Reason == PolicyGate.DnsSuppressedReason);
        Assert.StartsWith("30 refused DNS questions in the second from 2026-12-05T01:00:00Z", count.Path, StringComparison.Ordinal);
        Assert.Equal(("127.0.0.1", "chunk20.evil.test", 403), (count.SourceIp, count.Host, count.Status));
        Assert.Equal(0, gate.Metrics.UnauthenticatedSuppressed);
    }

    [Fact]
    public async Task RefuseStyle_refused_answers_REFUSED()
    {
        await using var guard = StartGuard("bot", refuseStyle: "refused");
        Assert.Equal("REFUSED", Status(await DigAsync("evil.test", "A", guard)));
    }

    [Fact]
    public async Task Hostile_input_gets_no_crash_and_no_hang()
    {
        using var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        udp.Connect(_guard.LocalEndpoint);
        var query = DnsMessages.Query(0x4242, "allowed.test", DnsWire.TypeA);

        // Every truncation, junk, an oversized datagram, a question that is a compression loop or a pointer
        // chain, a label over 63: each answered FORMERR or dropped; the guard answers the next query.
        var hostile = new List<byte[]>();
        for (var cut = 0; cut < query.Length; cut++)
        {
            hostile.Add(query[..cut]);
        }

        hostile.Add(new byte[9000]);
        hostile.Add([.. query[..12], 0xC0, 0x0C, 0, 1, 0, 1]); // the question's name points at itself
        hostile.Add([.. query[..12], 0xC0, 0x0E, 0xC0, 0x0C, 0, 1, 0, 1]); // two pointers in a loop
        hostile.Add([.. query[..12], 64, .. new byte[64].Select(_ => (byte)'a'), 0, 0, 1, 0, 1]); // a 64-byte label
        foreach (var message in hostile)
        {
            await udp.SendAsync(message);
        }

        var answers = 0;
        var buffer = new byte[65535];
        await udp.SendAsync(query);
        while (true)
        {
            var n = await udp.ReceiveAsync(buffer).WaitAsync(TimeSpan.FromSeconds(30));
            answers++;
            if (n >= 12 && DnsMessages.ReadU16(buffer, 0) == 0x4242 && (buffer[3] & 0xF) == 0 && DnsMessages.ReadU16(buffer, 6) == 1)
            {
                break; // the well-formed query's answer
            }

            Assert.Equal(DnsWire.RcodeFormErr, buffer[3] & 0xF);
        }

        Assert.InRange(answers, 2, hostile.Count + 1);

        // TCP: a length prefix promising more than is sent, then silence, and a closed half message: the
        // guard's other clients are answered meanwhile, and it still answers after.
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(_guard.LocalEndpoint);
        await tcp.GetStream().WriteAsync(new byte[] { 0xFF, 0xFF, 1, 2, 3 });
        using (var half = new TcpClient())
        {
            await half.ConnectAsync(_guard.LocalEndpoint);
            await half.GetStream().WriteAsync(new byte[] { 0x00 });
        }

        Assert.Contains("127.0.0.2", Answers(await DigAsync("allowed.test", "A", tcp: true)));
        var records = await RecordsAsync();
        Assert.Contains(records, r => r.Reason == ProxyReasons.DnsMalformed && r.Method == "DNS" && r.Decision == "BLOCK");
    }

    private DnsGuard StartGuard(string agent, string refuseStyle = "nxdomain")
    {
        var guard = new DnsGuard(new DnsOptions { RefuseStyle = refuseStyle }, agent, _upstream.EndPoint, _gate, _memory);
        guard.Start(new IPEndPoint(IPAddress.Loopback, 0));
        return guard;
    }

    private string Port(DnsGuard? guard = null) => (guard ?? _guard).LocalEndpoint.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private async Task<string> DigAsync(string name, string type, DnsGuard? guard = null, bool tcp = false)
    {
        var (code, output) = await ExternalTools.RunAsync("dig", [$"@127.0.0.1", "-p", Port(guard), "+tries=1", "+time=10", tcp ? "+tcp" : "+notcp", name, type], TimeSpan.FromSeconds(60));
        Assert.True(code == 0, output);
        return output;
    }

    private static string Status(string digOutput) => StatusPattern().Match(digOutput).Groups[1].Value;

    private static List<string> Answers(string digOutput)
    {
        var section = digOutput.IndexOf(";; ANSWER SECTION:", StringComparison.Ordinal);
        if (section < 0)
        {
            return [];
        }

        var end = digOutput.IndexOf("\n\n", section, StringComparison.Ordinal);
        return [.. digOutput[section..(end < 0 ? digOutput.Length : end)].Split('\n').Skip(1).Select(l => l.Split('\t', StringSplitOptions.RemoveEmptyEntries)).Where(f => f.Length >= 4).Select(f => f[^1])];
    }

    /// <summary>Every decision record: the test's last step (the guard stops, counted refusals are recorded, the writer closes).</summary>
    private async Task<List<AuditEntry>> RecordsAsync()
    {
        await _guard.DisposeAsync();
        _gate.FlushSuppressed();
        _audit.Dispose();
        return [.. AuditReader.ReadDirectory(_dir.File("audit")).Select(i => i.Entry!).Where(e => e.Kind == AuditKind.Decision)];
    }

    [GeneratedRegex(@"status: (\w+)")]
    private static partial Regex StatusPattern();
}
