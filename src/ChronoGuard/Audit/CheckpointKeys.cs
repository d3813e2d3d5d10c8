using System.Security.Cryptography;

namespace ChronoGuard.Audit;

/// <summary>Loads checkpoint signing keys (ECDSA P-256, PEM) and names them by a short key id.</summary>
internal static class CheckpointKeys
{
    public static ECDsa LoadPrivate(string file) => Load(file, isPrivate: true);

    public static ECDsa LoadPublic(string file) => Load(file, isPrivate: false);

    /// <summary>The first 16 hex digits of the SHA-256 of the public key (SubjectPublicKeyInfo DER).</summary>
    public static string KeyId(ECDsa key) => Convert.ToHexStringLower(SHA256.HashData(key.ExportSubjectPublicKeyInfo()))[..16];

    private static ECDsa Load(string file, bool isPrivate)
    {
        string pem;
        try
        {
            pem = File.ReadAllText(file);
        }
        catch (FileNotFoundException)
        {
            throw new IOException($"{file}: no such file");
        }

        var key = ECDsa.Create();
        try
        {
            key.ImportFromPem(pem);
            var parameters = key.ExportParameters(includePrivateParameters: false);
            if (key.KeySize != 256 || parameters.Curve.Oid.Value != "1.2.840.10045.3.1.7")
            {
                throw new InvalidDataException($"{file}: not an ECDSA P-256 key (chronoguard audit keygen makes one)");
            }

            if (isPrivate)
            {
                // Signing with a public key only fails later, on the writer thread; find it at start.
                _ = key.ExportParameters(includePrivateParameters: true);
            }

            return key;
        }
        catch (Exception ex) when (ex is ArgumentException or CryptographicException)
        {
            key.Dispose();
            throw new InvalidDataException($"{file}: not a PEM ECDSA P-256 {(isPrivate ? "private" : "public")} key (chronoguard audit keygen makes one)");
        }
        catch
        {
            key.Dispose();
            throw;
        }
    }
}
