using System.Security.Cryptography;

namespace ChronoGuard.Audit;

/// <summary>hash = SHA-256(prevHash ‖ canonical), or HMAC-SHA256 keyed from Audit.HmacKeyFile.</summary>
internal sealed class AuditChain : IDisposable
{
    private readonly IncrementalHash _hash;

    public AuditChain(byte[]? hmacKey)
    {
        IsHmac = hmacKey is not null;
        _hash = hmacKey is null ? IncrementalHash.CreateHash(HashAlgorithmName.SHA256) : IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, hmacKey);
    }

    public bool IsHmac { get; }

    public void Compute(ReadOnlySpan<byte> prevHash, ReadOnlySpan<byte> canonical, Span<byte> hash)
    {
        _hash.AppendData(prevHash);
        _hash.AppendData(canonical);
        _hash.GetHashAndReset(hash);
    }

    public static byte[]? ReadKey(string? keyFile)
    {
        if (string.IsNullOrEmpty(keyFile))
        {
            return null;
        }

        var key = File.ReadAllBytes(keyFile);
        return key.Length == 0 ? throw new InvalidDataException($"{keyFile}: HMAC key file is empty") : key;
    }

    public void Dispose() => _hash.Dispose();
}
