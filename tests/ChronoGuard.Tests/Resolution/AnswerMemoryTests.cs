using System.Net;
using ChronoGuard.Resolution;

namespace ChronoGuard.Tests.Resolution;

public sealed class AnswerMemoryTests
{
    private static readonly IPAddress Edge = IPAddress.Parse("203.0.113.7");

    [Fact]
    public void A_name_is_believed_for_its_address_for_its_agent_until_it_expires()
    {
        var memory = new AnswerMemory(64);
        memory.Remember("bot", "api.example.com", AddressKey.Of(Edge), expiresMs: 30_000, nowMs: 0);
        Assert.True(memory.WasAnswered("bot", "API.Example.com.", Edge, 29_999));
        Assert.True(memory.WasAnswered("bot", "api.example.com", IPAddress.Parse("::ffff:203.0.113.7"), 0));
        Assert.False(memory.WasAnswered("bot", "api.example.com", Edge, 30_000));
        Assert.False(memory.WasAnswered("other", "api.example.com", Edge, 0));
        Assert.False(memory.WasAnswered("bot", "evil.example.com", Edge, 0));
        Assert.False(memory.WasAnswered("bot", "api.example.com", IPAddress.Parse("203.0.113.8"), 0));
        Assert.True(memory.TryGetName("bot", Edge, 0, out var name));
        Assert.Equal("api.example.com", name);
        Assert.False(memory.TryGetName("other", Edge, 0, out _));
        Assert.False(memory.TryGetName("bot", Edge, 30_000, out _));
    }

    [Fact]
    public void Several_names_on_one_address_are_each_believed_and_the_latest_names_it()
    {
        var memory = new AnswerMemory(64);
        var cdn = AddressKey.Of(Edge);
        memory.Remember("bot", "a.example.com", cdn, 60_000, nowMs: 0);
        memory.Remember("bot", "b.example.com", cdn, 60_000, nowMs: 10);
        Assert.True(memory.WasAnswered("bot", "a.example.com", Edge, 20));
        Assert.True(memory.WasAnswered("bot", "b.example.com", Edge, 20));
        Assert.True(memory.TryGetName("bot", Edge, 20, out var name));
        Assert.Equal("b.example.com", name);

        // Answered again: the expiry moves, the entry is the same one (no new entry, no allocation).
        memory.Remember("bot", "a.example.com", cdn, 90_000, nowMs: 30);
        Assert.True(memory.WasAnswered("bot", "a.example.com", Edge, 80_000));
        Assert.True(memory.TryGetName("bot", Edge, 40, out name));
        Assert.Equal("a.example.com", name);
    }

    [Fact]
    public void A_flood_of_answers_never_grows_it_and_the_newest_stay_believed()
    {
        var memory = new AnswerMemory(1024);
        // This thread's allocations, not the process's heap: other tests run beside this one.
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 200_000; i++)
        {
            memory.Remember("bot", "flood.example.com", (UInt128)(uint)i, 1_000_000 + i, nowMs: 0);
        }

        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(1024, memory.Capacity);
        // The entry that expires first gives way: the last answers are all still there.
        for (var i = 199_990; i < 200_000; i++)
        {
            Assert.True(memory.WasAnswered("bot", "flood.example.com", IPAddress.Parse("::" + Hex(i)), 0), $"answer {i}");
        }

        Assert.InRange(allocated, 0, 1 << 20);
    }

    [Fact]
    public void Looking_up_allocates_nothing()
    {
        var memory = new AnswerMemory(64);
        memory.Remember("bot", "api.example.com", AddressKey.Of(Edge), 30_000, 0);
        Assert.Equal(0, Support.Allocations.Least(() =>
        {
            memory.WasAnswered("bot", "api.example.com", Edge, 1);
            memory.TryGetName("bot", Edge, 1, out _);
            memory.Remember("bot", "api.example.com", AddressKey.Of(Edge), 30_000, 1);
        }));
    }

    private static string Hex(int i) => $"{(i >> 16) & 0xFFFF:x}:{i & 0xFFFF:x}";
}
