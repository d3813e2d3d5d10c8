namespace ChronoGuard.Policy;

/// <summary>Receives each step of a decision; only <c>policy explain</c> passes one (null on the proxy path).</summary>
internal interface IDecisionTrace
{
    void Step(string text);
}
