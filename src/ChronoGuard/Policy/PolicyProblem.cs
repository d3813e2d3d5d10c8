namespace ChronoGuard.Policy;

/// <summary>
/// What is wrong at one place of a policy document, thrown by the validating stages (the reader and
/// the compiler's checks) and turned into a <see cref="PolicyLoadException"/> naming the file once,
/// at the top of <see cref="PolicyCompiler.Compile"/> and <see cref="PolicyLoader"/>.
/// </summary>
internal sealed class PolicyProblem(string where, string problem) : Exception(problem)
{
    /// <summary>A JSON path (<c>$.policies[0].extends[1]</c>) or a position (<c>line 3, column 7</c>).</summary>
    public string Where { get; } = where;
}
