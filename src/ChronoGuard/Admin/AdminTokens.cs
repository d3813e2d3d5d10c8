using System.Security.Cryptography;
using System.Text;

namespace ChronoGuard.Admin;

/// <summary>
/// The accepted bearer tokens, by SHA-256 (SPEC §9). The presented token is hashed and compared with
/// every configured hash in constant time, none skipped once one matched, so neither the position nor
/// the prefix of a match shows in the answer time.
/// </summary>
internal sealed class AdminTokens
{
    private readonly (string Name, byte[] Hash)[] _tokens;

    public AdminTokens(IEnumerable<AdminTokenEntry> entries)
    {
        _tokens = [.. entries.Select(e => (e.Name, Convert.FromHexString(e.Sha256)))];
    }

    public int Count => _tokens.Length;

    /// <summary>The actor for an <c>Authorization</c> header value, or null when it carries no accepted bearer token.</summary>
    public string? Authenticate(ReadOnlySpan<byte> authorization)
    {
        if (authorization.Length < 7 || !Ascii.EqualsIgnoreCase(authorization[..7], "Bearer "u8))
        {
            return null;
        }

        var token = authorization[7..].Trim((byte)' ');
        if (token.IsEmpty)
        {
            return null;
        }

        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(token, hash);
        string? actor = null;
        foreach (var (name, expected) in _tokens)
        {
            if (CryptographicOperations.FixedTimeEquals(hash, expected))
            {
                actor ??= name;
            }
        }

        return actor;
    }
}
