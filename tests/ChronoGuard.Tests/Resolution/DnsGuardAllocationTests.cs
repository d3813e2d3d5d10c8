using System.Net;
using ChronoGuard.Proxy;
using ChronoGuard.Resolution;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Resolution;

/// <summary>Issue 18: a question answered from the guard's cache allocates nothing (policy check, cache, memory refresh, the copy).</summary>
public sealed class DnsGuardAllocationTests
{
    [Fact]
    public void A_cached_answer_allocates_nothing_and_says_how_long_is_left()
    {
        using var policy = new PolicyEngines("""
            { "version": 1, "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
              "policies": [ { "name": "p", "allowedDomains": ["api.example.com"] } ] }
            """);
        var clock = new ManualTimeProvider(new DateTimeOffset(2026, 12, 5, 0, 0, 0, TimeSpan.Zero));
        var memory = new AnswerMemory();
        var guard = new DnsGuard(new DnsOptions(), "bot", new IPEndPoint(IPAddress.Loopback, 53), new PolicyGate(policy.Engine, clock), memory, clock);
        var upstream = DnsWireTests.Answer(0x3333, "api.example.com", DnsWire.TypeA, m => m.Record("", DnsWire.TypeA, 300, d => d.Bytes(192, 0, 2, 10), ownerPointer: 12), answerCount: 1);
        Assert.True(guard.Rebuild(upstream, 0x3333, "api.example.com"u8.ToArray(), DnsWire.TypeA, new byte[4096]) > 0);

        var query = DnsMessages.Query(0x4444, "Api.Example.com", DnsWire.TypeA);
        var answer = new byte[4096];
        var source = new IPEndPoint(IPAddress.Loopback, 40000).Serialize();
        clock.Advance(TimeSpan.FromSeconds(100));
        Assert.Equal(DnsStep.Answered, guard.Answer(query, answer, source, tcp: false, out _, out var length));
        Assert.Equal(0x4444, DnsMessages.ReadU16(answer, 0));
        Assert.Equal(query[12..^4], answer[12..(query.Length - 4)]); // the question in the client's case
        // 300 s upstream, 100 s later: 200 s left; the RD bit is the client's.
        Assert.Equal(200u, System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(answer.AsSpan(length - 10)));
        Assert.Equal(0x0100, DnsMessages.ReadU16(answer, 2) & 0x0100);
        Assert.True(memory.WasAnswered("bot", "api.example.com", IPAddress.Parse("192.0.2.10"), clock.GetUtcNow().ToUnixTimeMilliseconds()));

        Assert.Equal(0, Allocations.Least(() => guard.Answer(query, answer, source, tcp: false, out _, out _), 10_000));
    }
}
