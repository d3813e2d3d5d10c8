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

    /// <summary>Identifies the agent from a Proxy-Authorization value (Basic id:token, or Bearer token).</summary>
    public AuthOutcome Authenticate(ReadOnlySpan<byte> proxyAuthorization, out AgentPlan? agent)
    {
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

        var outcome = Verify(proxyAuthorization, out agent);
        if (outcome is AuthOutcome.Ok or AuthOutcome.Suspended)
        {
            Volatile.Write(ref _credentials[slot], new CredentialEntry(proxyAuthorization.ToArray(), agent!));
        }

        return outcome;
    }

    private AuthOutcome Verify(ReadOnlySpan<byte> value, out AgentPlan? agent)
    {
        agent = null;
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

            if (!AgentsById.TryGetValue(Encoding.UTF8.GetString(pair[..colon]), out var candidate) || candidate.TokenHash is null)
            {
                // Hash anyway so an unknown id costs what a known one does.
                SHA256.HashData(pair[(colon + 1)..], digest);
                return AuthOutcome.Invalid;
            }

            SHA256.HashData(pair[(colon + 1)..], digest);
            if (!CryptographicOperations.FixedTimeEquals(digest, candidate.TokenHash))
            {
                return AuthOutcome.Invalid;
            }

            agent = candidate;
        }
        else if (value.Length > 7 && Ascii.EqualsIgnoreCase(value[..7], "Bearer "u8))
        {
            SHA256.HashData(value[7..].Trim((byte)' '), digest);
            if (!AgentsByTokenHash.TryGetValue(Convert.ToHexStringLower(digest), out var candidate)
                || !CryptographicOperations.FixedTimeEquals(digest, candidate.TokenHash))
            {
                return AuthOutcome.Invalid;
            }

            agent = candidate;
        }
        else
        {
            return AuthOutcome.Invalid;
        }

        return agent.Suspended ? AuthOutcome.Suspended : AuthOutcome.Ok;
    }

    private static int Hash(ReadOnlySpan<byte> value)
    {
        var h = default(HashCode);
        h.AddBytes(value);
        return h.ToHashCode();
    }

    private sealed record CredentialEntry(byte[] Value, AgentPlan Agent);
}
