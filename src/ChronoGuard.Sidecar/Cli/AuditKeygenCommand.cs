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
            var stray = args.Length == 0 || (args[0] == "--out" && args.Length < 2) ? null : args[0] != "--out" ? args[0] : args[2];
            stderr.WriteLine(stray is null
                ? "audit keygen: usage: chronoguard audit keygen --out DIR"
                : $"audit keygen: {CommandLine.Unrecognised(stray, ["--out"])} (usage: chronoguard audit keygen --out DIR)");
            return CommandLine.UsageError;
        }

        var dir = args[1];
        var privatePath = Path.Combine(dir, PrivateFile);
        var publicPath = Path.Combine(dir, PublicFile);
        // The file the next failure is about.
        var current = dir;
        try
        {
            try
            {
                Directory.CreateDirectory(dir);
            }
            catch (Exception ex) when (IoErrors.IsIo(ex))
            {
                stderr.WriteLine($"audit keygen: {dir}: cannot create the directory: {IoErrors.CreateDirectoryProblem(dir, ex)}");
                return CommandLine.UsageError;
            }

            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            // CreateNew: never replace a key that checkpoints may already be signed with.
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
            {
                // Created with mode 0600, never readable by others even for a moment.
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }

            foreach (var existing in (string[])[privatePath, publicPath])
            {
                if (File.Exists(existing))
                {
                    throw new IOException($"{existing}: already exists; keygen never replaces a key");
                }
            }

            current = privatePath;
            using (var w = new StreamWriter(new FileStream(privatePath, options)))
            {
                w.Write(key.ExportPkcs8PrivateKeyPem());
                w.Write('\n');
            }

            current = publicPath;
            File.WriteAllText(publicPath, key.ExportSubjectPublicKeyInfoPem() + "\n");
            stdout.WriteLine($"wrote {privatePath} (private, mode 0600: set Audit:SigningKeyFile to it) and {publicPath} (public: verify --public-key), key id {CheckpointKeys.KeyId(key)}");
            return CommandLine.Ok;
        }
        catch (Exception ex) when (IoErrors.IsIo(ex))
        {
            // CreateNew losing a race to another keygen reads "already exists" too (EEXIST).
            stderr.WriteLine($"audit keygen: {IoErrors.Line(current, ex)}{(current == privatePath && File.Exists(privatePath) && !IoErrors.IsOwn(ex) ? "; keygen never replaces a key" : string.Empty)}");
            return CommandLine.UsageError;
        }
    }
}
