using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using ChronoGuard.Audit;
using ChronoGuard.Sidecar.Hosting;
using ChronoGuard.Tests.Policy;
using ChronoGuard.Tests.Support;
using Microsoft.Extensions.Logging;

namespace ChronoGuard.Tests.Cli;

/// <summary>
/// <c>Logging:Refusals</c> (SPEC §3, §9) through the real executable: every refusal is one structured
/// line on stdout (agent, host, port, decision, reason, dialed address, the audit seq the client was
/// given), allowed requests are not (unless <c>all</c>), <c>none</c> is silent, and an unauthenticated
/// flood is logged as the audit records it: one line per recorded refusal, the rest as the counted
/// system record. The lines come from the audit writer, so they appear in seq order: a later line
/// proves an earlier one was (or was not) written.
/// </summary>
public sealed partial class RefusalLogTests
{
    private const string Category = "chronoguard.refusals";

    private static string Policy(int port) => $$"""
        { "version": 1, "defaultAction": "deny",
          "network": { "allowedCidrs": ["127.0.0.0/8"], "allowedPorts": [443, {{port}}] },
          "agents": [ { "id": "bot", "tokenSha256": "{{PolicyFixture.TokenSha}}", "policies": ["p"] } ],
          "policies": [ { "name": "p", "allowedDomains": ["127.0.0.1", "10.255.255.1"], "blockedDomains": ["blocked.test"] } ] }
        """;

    private static async Task<(int Status, long? Seq)> SendAsync(SidecarProcess sidecar, string request)
    {
        using var client = await RawClient.ConnectAsync(sidecar.ProxyEndPoint);
        await client.SendAsync(request);
        var head = await client.ReadHeadAsync();
        return (head.Status, head["X-ChronoGuard-Audit-Seq"] is { } seq ? long.Parse(seq, System.Globalization.CultureInfo.InvariantCulture) : null);
    }

    private static string Auth => "Proxy-Authorization: " + System.Text.Encoding.ASCII.GetString(PolicyFixture.Basic("bot")) + "\r\n";

    private static List<JsonElement> RefusalLines(SidecarProcess sidecar) =>
        sidecar.Output.Split('\n')
            .Where(l => l.StartsWith('{') && l.Contains($"\"Category\":\"{Category}\"", StringComparison.Ordinal))
            .Select(l => JsonDocument.Parse(l).RootElement.Clone())
            .ToList();

    private static JsonElement State(JsonElement line) => line.GetProperty("State");

    [Fact]
    public async Task Each_refusal_is_one_structured_line_with_its_audit_seq_and_an_allowed_request_is_none()
    {
        await using var origin = await KestrelOrigin.StartAsync();
        using var dir = new TempDir();
        File.WriteAllText(dir.File("policy.json"), Policy(origin.Port));
        await using var sidecar = await SidecarProcess.StartAsync(dir.Path, ["--policy", dir.File("policy.json")]);

        var allowed = await SendAsync(sidecar, $"GET http://127.0.0.1:{origin.Port}/hello HTTP/1.1\r\nHost: 127.0.0.1:{origin.Port}\r\n{Auth}Connection: close\r\n\r\n");
        var denied = await SendAsync(sidecar, $"CONNECT elsewhere.test:443 HTTP/1.1\r\nHost: elsewhere.test:443\r\n{Auth}\r\n");
        var guarded = await SendAsync(sidecar, $"GET http://10.255.255.1:{origin.Port}/ HTTP/1.1\r\nHost: 10.255.255.1:{origin.Port}\r\n{Auth}Connection: close\r\n\r\n");
        var blocked = await SendAsync(sidecar, $"GET http://blocked.test:{origin.Port}/x HTTP/1.1\r\nHost: blocked.test:{origin.Port}\r\n{Auth}Connection: close\r\n\r\n");
        Assert.Equal((200, 403, 403, 403), (allowed.Status, denied.Status, guarded.Status, blocked.Status));

        await sidecar.WaitForOutputAsync(l => l.Contains($"audit seq {blocked.Seq}\"", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
        var lines = RefusalLines(sidecar);
        Assert.Equal(3, lines.Count);
        Assert.All(lines, l => Assert.Equal("Warning", l.GetProperty("LogLevel").GetString()));

        var (deny, guard, block) = (State(lines[0]), State(lines[1]), State(lines[2]));
        Assert.Equal(("DENY", "default_deny", "bot", "CONNECT", "elsewhere.test", 443, "-", denied.Seq!.Value),
            (deny.GetProperty("Decision").GetString(), deny.GetProperty("Reason").GetString(), deny.GetProperty("Agent").GetString(), deny.GetProperty("Method").GetString(),
             deny.GetProperty("Host").GetString(), deny.GetProperty("Port").GetInt32(), deny.GetProperty("DialedIp").GetString(), deny.GetProperty("Seq").GetInt64()));
        Assert.Equal(("BLOCK", "private_destination", "10.255.255.1", guarded.Seq!.Value),
            (guard.GetProperty("Decision").GetString(), guard.GetProperty("Reason").GetString(), guard.GetProperty("Host").GetString(), guard.GetProperty("Seq").GetInt64()));
        Assert.Equal(("BLOCK", "domain_blocked", "GET", "blocked.test", origin.Port, "127.0.0.1", 403, blocked.Seq!.Value),
            (block.GetProperty("Decision").GetString(), block.GetProperty("Reason").GetString(), block.GetProperty("Method").GetString(), block.GetProperty("Host").GetString(),
             block.GetProperty("Port").GetInt32(), block.GetProperty("SourceIp").GetString(), block.GetProperty("Status").GetInt32(), block.GetProperty("Seq").GetInt64()));
        Assert.StartsWith($"refused BLOCK domain_blocked: agent bot GET blocked.test:{origin.Port} from 127.0.0.1", lines[2].GetProperty("Message").GetString(), StringComparison.Ordinal);

        // Each line says what its chained record says ("-" for an empty field).
        sidecar.Signal("TERM");
        Assert.Equal(0, await sidecar.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        var records = AuditReader.ReadDirectory(dir.File("audit")).Select(i => i.Entry!).ToDictionary(e => e.Seq);
        foreach (var state in lines.Select(State))
        {
            var e = records[state.GetProperty("Seq").GetInt64()];
            static string Dash(string s) => s.Length == 0 ? "-" : s;
            Assert.Equal((Dash(e.Agent), Dash(e.Method), Dash(e.Host), e.Port, Dash(e.Decision), Dash(e.Reason), Dash(e.DialedIp), Dash(e.SourceIp), e.Status),
                (state.GetProperty("Agent").GetString(), state.GetProperty("Method").GetString(), state.GetProperty("Host").GetString(), state.GetProperty("Port").GetInt32(),
                 state.GetProperty("Decision").GetString(), state.GetProperty("Reason").GetString(), state.GetProperty("DialedIp").GetString(), state.GetProperty("SourceIp").GetString(), state.GetProperty("Status").GetInt32()));
        }
    }

    [Fact]
    public async Task An_unauthenticated_flood_is_logged_as_it_is_audited_one_line_each_then_the_counted_record()
    {
        using var dir = new TempDir();
        await using var sidecar = await SidecarProcess.StartAsync(dir.Path, ["--policy", PolicyFile(dir, 1)], new Dictionary<string, string> { ["CHRONOGUARD__Audit__UnauthenticatedPerSecond"] = "2" });

        var responses = new List<(int Status, long? Seq)>();
        for (var i = 0; i < 40; i++)
        {
            responses.Add(await SendAsync(sidecar, "GET http://flood.test/ HTTP/1.1\r\nHost: flood.test\r\n\r\n"));
        }

        Assert.All(responses, r => Assert.Equal(407, r.Status));
        // The stop records the counts of the second in progress, and the log writes what the writer chained.
        sidecar.Signal("TERM");
        Assert.Equal(0, await sidecar.WaitForExitAsync(TimeSpan.FromSeconds(60)));

        var lines = RefusalLines(sidecar);
        var one = lines.Where(l => l.GetProperty("EventId").GetInt32() == 60).Select(l => State(l).GetProperty("Seq").GetInt64()).ToList();
        Assert.Equal(responses.Where(r => r.Seq is not null).Select(r => r.Seq!.Value), one);
        var counted = lines.Where(l => l.GetProperty("EventId").GetInt32() == 63).Select(State).ToList();
        Assert.NotEmpty(counted);
        Assert.All(counted, c => Assert.Equal(("unauthenticated_suppressed", "flood.test", "127.0.0.1"), (c.GetProperty("Reason").GetString(), c.GetProperty("Host").GetString(), c.GetProperty("SourceIp").GetString())));
        Assert.Equal(responses.Count(r => r.Seq is null), counted.Sum(c => int.Parse(CountPattern().Match(c.GetProperty("Detail").GetString()!).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)));
    }

    [Theory]
    [InlineData("all")]
    [InlineData("none")]
    public async Task All_adds_allowed_decisions_and_none_writes_no_line(string mode)
    {
        await using var origin = await KestrelOrigin.StartAsync();
        using var dir = new TempDir();
        File.WriteAllText(dir.File("policy.json"), Policy(origin.Port));
        await using var sidecar = await SidecarProcess.StartAsync(dir.Path, ["--policy", dir.File("policy.json")], new Dictionary<string, string> { ["CHRONOGUARD__Logging__Refusals"] = mode });

        var allowed = await SendAsync(sidecar, $"GET http://127.0.0.1:{origin.Port}/hello HTTP/1.1\r\nHost: 127.0.0.1:{origin.Port}\r\n{Auth}Connection: close\r\n\r\n");
        var denied = await SendAsync(sidecar, $"CONNECT elsewhere.test:443 HTTP/1.1\r\nHost: elsewhere.test:443\r\n{Auth}\r\n");
        Assert.Equal((200, 403), (allowed.Status, denied.Status));
        sidecar.Signal("TERM");
        Assert.Equal(0, await sidecar.WaitForExitAsync(TimeSpan.FromSeconds(60)));

        var lines = RefusalLines(sidecar);
        if (mode == "none")
        {
            Assert.Empty(lines);
            return;
        }

        Assert.Equal(2, lines.Count);
        var allow = State(lines[0]);
        Assert.Equal(("Information", "ALLOW", "allowed", "127.0.0.1", "127.0.0.1", 200),
            (lines[0].GetProperty("LogLevel").GetString(), allow.GetProperty("Decision").GetString(), allow.GetProperty("Reason").GetString(), allow.GetProperty("Host").GetString(), allow.GetProperty("DialedIp").GetString(), allow.GetProperty("Status").GetInt32()));
        Assert.Equal(denied.Seq, State(lines[1]).GetProperty("Seq").GetInt64());
    }

    [Fact]
    public void Which_records_get_a_line()
    {
        static AuditRecord Record(AuditKind kind, string decision, string reason = "", bool enforced = true)
        {
            var r = default(AuditRecord);
            r.Kind = kind;
            r.Enforced = enforced;
            r.Set(AuditText.Decision, decision);
            r.Set(AuditText.Reason, reason);
            return r;
        }

        foreach (var all in new[] { false, true })
        {
            Assert.True(RefusalLog.Wants(all, Record(AuditKind.Decision, "DENY")));
            Assert.True(RefusalLog.Wants(all, Record(AuditKind.Decision, "RATE_LIMITED")));
            // Observe mode forwarded it, but enforce would refuse it: the line says so.
            Assert.True(RefusalLog.Wants(all, Record(AuditKind.Decision, "BLOCK", enforced: false)));
            Assert.Equal(all, RefusalLog.Wants(all, Record(AuditKind.Decision, "ALLOW")));
            Assert.True(RefusalLog.Wants(all, Record(AuditKind.System, string.Empty, "unauthenticated_suppressed")));
            Assert.True(RefusalLog.Wants(all, Record(AuditKind.System, string.Empty, "dns_suppressed")));
            Assert.False(RefusalLog.Wants(all, Record(AuditKind.System, string.Empty, "policy_load")));
            Assert.False(RefusalLog.Wants(all, Record(AuditKind.Close, "DENY", "policy_revoked")));
        }
    }

    [Fact]
    public void A_stuck_log_output_never_holds_up_the_writer_and_every_line_is_written_or_counted()
    {
        using var release = new ManualResetEventSlim(false);
        var logger = new BlockingLogger(release);
        var log = new RefusalLog(all: false, logger);
        var r = default(AuditRecord);
        r.Kind = AuditKind.Decision;
        r.Set(AuditText.Decision, "DENY");
        const int Sent = 5 * RefusalLog.Capacity;
        try
        {
            // The output is stuck on the first line before the rest come: its slot stays taken, so the
            // ring holds Capacity - 1 more and every later one is counted, none waited for. (Counted
            // lines are handed to the summary when a second ends: while the output is stuck, none is.)
            log.Observe(r);
            Assert.True(logger.Entered.Wait(TimeSpan.FromSeconds(30)), "the first line never reached the output");
            for (var i = 1; i < Sent; i++)
            {
                r.Seq = i;
                log.Observe(r);
            }

            Assert.Equal(Sent - RefusalLog.Capacity, log.Dropped);
        }
        finally
        {
            // Never leave the log's thread waiting on an event this test disposes.
            release.Set();
            log.Dispose();
        }

        var lines = logger.Lines;
        var written = lines.Count(l => l.StartsWith("refused DENY", StringComparison.Ordinal));
        var summaries = lines.Where(l => l.Contains("refusal log lines were not written", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(summaries);
        Assert.Equal(Sent, written + summaries.Sum(l => long.Parse(l.Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture)));
        // Written in seq order, with no seq twice.
        var seqs = lines.Where(l => l.StartsWith("refused DENY", StringComparison.Ordinal)).Select(l => long.Parse(SeqPattern().Match(l).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(seqs.Order(), seqs);
        Assert.Equal(seqs.Count, seqs.Distinct().Count());
    }

    [Fact]
    public void A_logging_provider_that_throws_ends_neither_the_log_nor_the_process()
    {
        // Every call throws, the summary's too: before, that one escaped the log's thread and ended
        // the process (a whole test run aborted on it). Now each is counted and the thread goes on.
        var logger = new ThrowingLogger();
        var log = new RefusalLog(all: false, logger);
        var r = default(AuditRecord);
        r.Kind = AuditKind.Decision;
        r.Set(AuditText.Decision, "DENY");
        log.Observe(r);
        Assert.True(logger.Called.Wait(TimeSpan.FromSeconds(30)), "the line never reached the output");

        log.Dispose();

        // The line that threw was counted, and the stop's summary tried to say so (and threw too).
        Assert.Equal(1, log.Dropped);
        Assert.True(logger.Calls >= 2, $"{logger.Calls} calls");
    }

    private static string PolicyFile(TempDir dir, int port)
    {
        File.WriteAllText(dir.File("policy.json"), Policy(port));
        return dir.File("policy.json");
    }

    [GeneratedRegex(@"^(\d+) unauthenticated refusals")]
    private static partial Regex CountPattern();

    [GeneratedRegex(@"audit seq (\d+)$")]
    private static partial Regex SeqPattern();

    /// <summary>An output that throws on every line (a provider whose sink has gone).</summary>
    private sealed class ThrowingLogger : ILogger
    {
        private int _calls;

        public ManualResetEventSlim Called { get; } = new(false);

        public int Calls => Volatile.Read(ref _calls);

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            Interlocked.Increment(ref _calls);
            Called.Set();
            throw new ObjectDisposedException("sink");
        }
    }

    /// <summary>Blocks the first line until released: the log's output is stuck (a full pipe).</summary>
    private sealed class BlockingLogger(ManualResetEventSlim release) : ILogger
    {
        private readonly List<string> _lines = [];

        /// <summary>Set once a line has reached the output (and is stuck there until released).</summary>
        public ManualResetEventSlim Entered { get; } = new(false);

        public List<string> Lines
        {
            get
            {
                lock (_lines)
                {
                    return [.. _lines];
                }
            }
        }

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            Entered.Set();
            release.Wait();
            lock (_lines)
            {
                _lines.Add(formatter(state, exception));
            }
        }
    }
}
