using System.Security.Cryptography;

namespace ChronoGuard.Policy;

/// <summary>Reads, validates and compiles a policy file. Every error names the file and the JSON path.</summary>
internal static class PolicyLoader
{
    public const int MaxFileBytes = 16 * 1024 * 1024;

    /// <exception cref="PolicyLoadException">The file is unreadable or invalid.</exception>
    public static CompiledPolicy Load(string path, AgentRegistry registry, int maxTunnelsPerAgent, out string sha256, bool inspectionConfigured = false, bool approvalsConfigured = false)
    {
        var outcome = TryLoad(path, registry, maxTunnelsPerAgent, inspectionConfigured, approvalsConfigured);
        sha256 = outcome.Sha256;
        return outcome.Policy ?? throw new PolicyLoadException(outcome.Error!);
    }

    /// <summary>
    /// Never throws: whatever the file holds, the outcome is the compiled policy or one line naming the
    /// file, the place and the problem, with the SHA-256 of exactly the bytes that were judged.
    /// </summary>
    /// <param name="inspectionConfigured">Inspection (a CA) is configured: SPEC §7 keys are refused without it.</param>
    /// <param name="approvalsConfigured">The admin API is on (SPEC §9): <c>ask</c> is refused without it, since nobody could approve a held request.</param>
    public static PolicyLoadOutcome TryLoad(string path, AgentRegistry registry, int maxTunnelsPerAgent, bool inspectionConfigured = false, bool approvalsConfigured = false)
    {
        byte[] bytes;
        try
        {
            bytes = ReadBounded(path);
        }
        catch (PolicyProblem p)
        {
            return new PolicyLoadOutcome(false, $"{path}: {p.Where}: {p.Message}", string.Empty, null);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            return new PolicyLoadOutcome(false, $"{path}: cannot read the file: {IoErrors.Problem(ex, path)}", string.Empty, null);
        }

        var sha256 = Convert.ToHexStringLower(SHA256.HashData(bytes));
        try
        {
            var document = PolicyReader.Read(bytes);
            var compiled = PolicyCompiler.Compile(document, path, sha256, registry, maxTunnelsPerAgent, inspectionConfigured, approvalsConfigured);
            return new PolicyLoadOutcome(true, null, sha256, compiled);
        }
        catch (PolicyProblem p)
        {
            return new PolicyLoadOutcome(false, Located(path, bytes, p), sha256, null);
        }
        catch (PolicyLoadException ex)
        {
            return new PolicyLoadOutcome(false, ex.Problem is { } p ? Located(path, bytes, p) : ex.Message, sha256, null);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Every input shape is meant to be a PolicyProblem above; this keeps a reload alive (old
            // policy kept, policy_reject recorded) if one was missed, and says so.
            return new PolicyLoadOutcome(false, $"{path}: the policy could not be compiled (an unexpected {ex.GetType().Name}); please report this file", sha256, null);
        }
    }

    /// <summary>
    /// One line: the file, the line and column of a problem found at a JSON path (a syntax error already
    /// is a position), the path, the problem.
    /// </summary>
    private static string Located(string path, byte[] bytes, PolicyProblem p) =>
        JsonPathPosition.Find(bytes, p.Where) is { } position
            ? $"{path}: {position}: {p.Where}: {p.Message}"
            : $"{path}: {p.Where}: {p.Message}";

    /// <summary>Reads at most <see cref="MaxFileBytes"/> + 1 bytes, so a file that grows while read cannot exceed the bound.</summary>
    private static byte[] ReadBounded(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.SequentialScan);
        var buffer = new byte[(int)Math.Min(MaxFileBytes + 1L, Math.Max(0, stream.CanSeek ? stream.Length : 0) + 1)];
        var total = 0;
        while (true)
        {
            if (total == buffer.Length)
            {
                if (buffer.Length > MaxFileBytes)
                {
                    throw new PolicyProblem("$", $"the file is larger than {MaxFileBytes} bytes");
                }

                Array.Resize(ref buffer, (int)Math.Min(MaxFileBytes + 1L, buffer.Length * 2L));
            }

            var n = stream.Read(buffer, total, buffer.Length - total);
            if (n == 0)
            {
                return buffer[..total];
            }

            total += n;
        }
    }
}
