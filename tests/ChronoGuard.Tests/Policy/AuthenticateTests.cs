using System.Text;
using ChronoGuard.Policy;

namespace ChronoGuard.Tests.Policy;

/// <summary>No credentials (the 407 round trip) is told apart from wrong ones, which keep the claimed id.</summary>
public sealed class AuthenticateTests
{
    private readonly CompiledPolicy _policy = PolicyFixture.Compile("""
        { "version": 1, "agents": [ { "id": "bot", "tokenSha256": "$TOKEN" }, { "id": "zzz", "tokenSha256": "$TOKEN", "status": "suspended" } ] }
        """);

    [Theory]
    [InlineData("bot", "wrong", "bot")]
    [InlineData("nobody", "s3cret-token", "nobody")]
    [InlineData("we\u0001ird", "x", "we?ird")]
    public void Wrong_basic_credentials_give_back_the_claimed_id(string id, string token, string claimed)
    {
        Span<byte> buffer = stackalloc byte[CompiledPolicy.MaxClaimedIdBytes];
        Assert.Equal(AuthOutcome.Invalid, _policy.Authenticate(PolicyFixture.Basic(id, token), buffer, out var agent, out var length));
        Assert.Null(agent);
        Assert.Equal(claimed, Encoding.ASCII.GetString(buffer[..length]));
    }

    [Fact]
    public void No_credentials_is_missing_not_invalid()
    {
        Span<byte> buffer = stackalloc byte[CompiledPolicy.MaxClaimedIdBytes];
        Assert.Equal(AuthOutcome.Missing, _policy.Authenticate(default, buffer, out _, out var length));
        Assert.Equal(0, length);
        Assert.Equal(AuthOutcome.Invalid, _policy.Authenticate("Bearer nope"u8, buffer, out _, out length));
        Assert.Equal(0, length);
        Assert.Equal(AuthOutcome.Invalid, _policy.Authenticate("Basic !!!"u8, buffer, out _, out length));
        Assert.Equal(AuthOutcome.Ok, _policy.Authenticate(PolicyFixture.Basic("bot"), buffer, out var agent, out _));
        Assert.Equal("bot", agent!.Id);
        Assert.Equal(AuthOutcome.Suspended, _policy.Authenticate(PolicyFixture.Basic("zzz"), buffer, out _, out _));
        Assert.Equal("auth_required", Reasons.AuthRequired);
    }

    [Fact]
    public void A_long_claimed_id_is_cut_to_the_buffer()
    {
        Span<byte> buffer = stackalloc byte[8];
        Assert.Equal(AuthOutcome.Invalid, _policy.Authenticate(PolicyFixture.Basic(new string('x', 300), "t"), buffer, out _, out var length));
        Assert.Equal(8, length);
    }
}
