namespace ChronoGuard.Policy;

/// <summary>A policy file that cannot be used; the message is one line: file, JSON path, problem.</summary>
/// <param name="problem">The problem at its JSON path, when there is one: the loader adds its line and column.</param>
internal sealed class PolicyLoadException(string message, PolicyProblem? problem = null) : Exception(message, problem)
{
    public PolicyProblem? Problem { get; } = problem;
}
