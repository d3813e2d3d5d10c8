using System.Security.Cryptography;
using System.Text;

namespace ChronoGuard.Sidecar.Cli;

/// <summary><c>chronoguard hash-token</c>: the token on stdin (one trailing newline ignored) to lowercase hex SHA-256.</summary>
internal static class HashTokenCommand
{
    public static int Run(string[] args, TextReader stdin, TextWriter stdout, TextWriter stderr)
    {
        if (args.Length != 0)
        {
            stderr.WriteLine("hash-token: takes no arguments; pipe the token on stdin");
            return CommandLine.UsageError;
        }

        var token = stdin.ReadToEnd();
        if (token.EndsWith('\n'))
        {
            token = token[..^1];
        }

        if (token.EndsWith('\r'))
        {
            token = token[..^1];
        }

        if (token.Length == 0 || token.Contains('\n', StringComparison.Ordinal))
        {
            stderr.WriteLine("hash-token: stdin must hold exactly one non-empty token");
            return CommandLine.UsageError;
        }

        stdout.WriteLine(Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token))));
        return CommandLine.Ok;
    }
}
