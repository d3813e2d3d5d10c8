namespace ChronoGuard.Policy;

/// <param name="Ok">Whether the new policy is now current.</param>
/// <param name="Error">One line naming file, JSON path and problem, when not.</param>
/// <param name="Sha256">The file's SHA-256 (hex), for the audit record of the load or rejection.</param>
internal sealed record PolicyLoadOutcome(bool Ok, string? Error, string Sha256, CompiledPolicy? Policy);
