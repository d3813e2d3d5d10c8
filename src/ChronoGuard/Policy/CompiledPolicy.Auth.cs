using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;

namespace ChronoGuard.Policy;

internal sealed partial class CompiledPolicy
{
    private const int CacheSlots = 1024;

    // Verified credentials by the exact Proxy-Authorization value: a hit costs one hash of the value
    // and one constant-time compare, instead of a base64 decode and a SHA-256 per request. Slots are
    // immutable entries swapped in with Volatile.Write; a collision simply overwrites.
    private readonly CredentialEntry?[] _credentials = new CredentialEntry?[CacheSlots];

    public required IReadOnlyDictionary<string, AgentPlan> AgentsById { get; init; }

    /// <summary>Agents by the lowercase hex SHA-256 of their token, for Bearer credentials.</summary>
    public required IReadOnlyDictionary<string, AgentPlan> AgentsByTokenHash { get; init; }

    /// <summary>Longest claimed agent id given back by <see cref="Authenticate(ReadOnlySpan{byte}, Span{byte}, out AgentPlan?, out int)"/>.</summary>
    public const int MaxClaimedIdBytes = 128;

    /// <summary>Identifies the agent from a Proxy-Authorization value (Basic id:token, or Bearer token).</summary>
    public AuthOutcome Authenticate(ReadOnlySpan<byte> proxyAuthorization, out AgentPlan? agent) =>
        Authenticate(proxyAuthorization, default, out agent, out _);

    /// <summary>
    /// As above; for <see cref="AuthOutcome.Invalid"/> Basic credentials, also copies the agent id
    /// they claim (the part before ':', printable ASCII, '?' for anything else, at most
    /// <paramref name="claimedId"/>'s length) so the record can keep it, marked unauthenticated.
    /// <see cref="AuthOutcome.Missing"/> means no credentials at all: the client's normal 407 round trip.
    /// </summary>
    public AuthOutcome Authenticate(ReadOnlySpan<byte> proxyAuthorization, Span<byte> claimedId, out AgentPlan? agent, out int claimedIdLength)
    {
        claimedIdLength = 0;
        if (Anonymous is { } anonymous)
        {
            agent = anonymous;
            return AuthOutcome.Ok;
        }

        agent = null;
        if (proxyAuthorization.IsEmpty)
        {
            return AuthOutcome.Missing;
        }

        var slot = (int)((uint)Hash(proxyAuthorization) % CacheSlots);
        var cached = Volatile.Read(ref _credentials[slot]);
        if (cached is not null && cached.Value.Length == proxyAuthorization.Length
            && CryptographicOperations.FixedTimeEquals(cached.Value, proxyAuthorization))
        {
            agent = cached.Agent;
            return agent.Suspended ? AuthOutcome.Suspended : AuthOutcome.Ok;
        }

        var outcome = Verify(proxyAuthorization, claimedId, out agent, out claimedIdLength);
        if (outcome is AuthOutcome.Ok or AuthOutcome.Suspended)
        {
            Volatile.Write(ref _credentials[slot], new CredentialEntry(proxyAuthorization.ToArray(), agent!));
        }

        return outcome;
    }

    /// <summary>
    /// Identifies the agent from an id and a token offered apart (SOCKS5 username/password, RFC 1929):
    /// the same check as Basic credentials, without an HTTP header to carry them, and the same cache.
    /// A SOCKS tunnel asks twice (at its login, then when it is decided): the second is a cache hit.
    /// </summary>
    public AuthOutcome Authenticate(ReadOnlySpan<byte> id, ReadOnlySpan<byte> token, Span<byte> claimedId, out AgentPlan? agent, out int claimedIdLength)
    {
        claimedIdLength = 0;
        if (Anonymous is { } anonymous)
        {
            agent = anonymous;
            return AuthOutcome.Ok;
        }

        agent = null;
        if (id.IsEmpty && token.IsEmpty)
        {
            return AuthOutcome.Missing;
        }

        if (id.IsEmpty || id.Length > 255 || token.Length > 255)
        {
            return AuthOutcome.Invalid;
        }

        // The cache key: a 0 byte (no Proxy-Authorization value starts with one, so the two kinds of
        // key never meet), the id, ':', the token.
        Span<byte> key = stackalloc byte[2 + id.Length + token.Length];
        key[0] = 0;
        id.CopyTo(key[1..]);
        key[1 + id.Length] = (byte)':';
        token.CopyTo(key[(2 + id.Length)..]);
        var slot = (int)((uint)Hash(key) % CacheSlots);
        var cached = Volatile.Read(ref _credentials[slot]);
        if (cached is not null && cached.Value.Length == key.Length && CryptographicOperations.FixedTimeEquals(cached.Value, key))
        {
            agent = cached.Agent;
            return agent.Suspended ? AuthOutcome.Suspended : AuthOutcome.Ok;
        }

        var outcome = VerifyPair(id, token, claimedId, out agent, out claimedIdLength);
        if (outcome is AuthOutcome.Ok or AuthOutcome.Suspended)
        {
            Volatile.Write(ref _credentials[slot], new CredentialEntry(key.ToArray(), agent!));
        }

        return outcome;
    }

    private AuthOutcome VerifyPair(ReadOnlySpan<byte> id, ReadOnlySpan<byte> token, Span<byte> claimedId, out AgentPlan? agent, out int claimedIdLength)
    {
        agent = null;
        claimedIdLength = CopyPrintable(id, claimedId);
        Span<byte> digest = stackalloc byte[32];
        if (!AgentsById.TryGetValue(Encoding.UTF8.GetString(id), out var candidate) || candidate.TokenHash is null)
        {
            // Hash anyway so an unknown id costs what a known one does.
            SHA256.HashData(token, digest);
            return AuthOutcome.Invalid;
        }

        SHA256.HashData(token, digest);
        if (!CryptographicOperations.FixedTimeEquals(digest, candidate.TokenHash))
        {
            return AuthOutcome.Invalid;
        }

        agent = candidate;
        return agent.Suspended ? AuthOutcome.Suspended : AuthOutcome.Ok;
    }

    private AuthOutcome Verify(ReadOnlySpan<byte> value, Span<byte> claimedId, out AgentPlan? agent, out int claimedIdLength)
    {
        agent = null;
        claimedIdLength = 0;
        Span<byte> digest = stackalloc byte[32];
        if (value.Length > 6 && Ascii.EqualsIgnoreCase(value[..6], "Basic "u8))
        {
            var encoded = value[6..].Trim((byte)' ');
            Span<byte> decoded = stackalloc byte[512];
            if (encoded.Length > 680 || Base64.DecodeFromUtf8(encoded, decoded, out _, out var written) != System.Buffers.OperationStatus.Done)
            {
                return AuthOutcome.Invalid;
            }

            var pair = decoded[..written];
            var colon = pair.IndexOf((byte)':');
            if (colon <= 0)
            {
                return AuthOutcome.Invalid;
            }

            return VerifyPair(pair[..colon], pair[(colon + 1)..], claimedId, out agent, out claimedIdLength);
        }

        if (value.Length > 7 && Ascii.EqualsIgnoreCase(value[..7], "Bearer "u8))
        {
            SHA256.HashData(value[7..].Trim((byte)' '), digest);
            if (!AgentsByTokenHash.TryGetValue(Convert.ToHexStringLower(digest), out var candidate)
                || !CryptographicOperations.FixedTimeEquals(digest, candidate.TokenHash))
            {
                return AuthOutcome.Invalid;
            }

            agent = candidate;
            return agent.Suspended ? AuthOutcome.Suspended : AuthOutcome.Ok;
        }

        return AuthOutcome.Invalid;
    }

    private static int CopyPrintable(ReadOnlySpan<byte> id, Span<byte> into)
    {
        var n = Math.Min(id.Length, into.Length);
        for (var i = 0; i < n; i++)
        {
            into[i] = id[i] is >= 0x21 and <= 0x7e ? id[i] : (byte)'?';
        }

        return n;
    }

    private static int Hash(ReadOnlySpan<byte> value)
    {
        var h = default(HashCode);
        h.AddBytes(value);
        return h.ToHashCode();
    }

    private sealed record CredentialEntry(byte[] Value, AgentPlan Agent);
}
