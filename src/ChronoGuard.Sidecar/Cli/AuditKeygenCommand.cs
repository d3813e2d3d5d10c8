using System.Security.Cryptography;
using ChronoGuard.Audit;

namespace ChronoGuard.Sidecar.Cli;

/// <summary>
/// <c>chronoguard audit keygen --out DIR</c>: an ECDSA P-256 key pair for signed checkpoints. The private
/// key goes to the sidecar (Audit:SigningKeyFile), the public key to whoever verifies.
/// </summary>
internal static class AuditKeygenCommand
{
    public const string PrivateFile = "checkpoint-signing.key";
    public const string PublicFile = "checkpoint-signing.pub";

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Length != 2 || args[0] != "--out")
        {
            stderr.WriteLine("audit keygen: usage: chronoguard audit keygen --out DIR");
            return CommandLine.UsageError;
        }

        var dir = args[1];
        var privatePath = Path.Combine(dir, PrivateFile);
        var publicPath = Path.Combine(dir, PublicFile);
        try
        {
            Directory.CreateDirectory(dir);
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            // CreateNew: never replace a key that checkpoints may already be signed with.
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
            {
                // Created with mode 0600, never readable by others even for a moment.
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }

            if (File.Exists(publicPath))
            {
                throw new IOException($"{publicPath}: already exists; keygen never replaces a key");
            }

            using (var w = new StreamWriter(new FileStream(privatePath, options)))
            {
                w.Write(key.ExportPkcs8PrivateKeyPem());
                w.Write('\n');
            }

            File.WriteAllText(publicPath, key.ExportSubjectPublicKeyInfoPem() + "\n");
            stdout.WriteLine($"wrote {privatePath} (private, mode 0600: set Audit:SigningKeyFile to it) and {publicPath} (public: verify --public-key), key id {CheckpointKeys.KeyId(key)}");
            return CommandLine.Ok;
        }
        catch (IOException ex) when (File.Exists(privatePath) && ex.Message.Contains(privatePath, StringComparison.Ordinal) && ex is not DirectoryNotFoundException)
        {
            stderr.WriteLine($"audit keygen: {privatePath}: already exists; keygen never replaces a key");
            return CommandLine.UsageError;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"audit keygen: {ex.Message}");
            return CommandLine.UsageError;
        }
    }
}
