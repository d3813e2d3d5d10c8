using ChronoGuard.Http;
using ChronoGuard.Metrics;
using ChronoGuard.Policy;

namespace ChronoGuard.Proxy;

/// <summary>
/// The fixed set of values the <c>reason</c> label of <c>chronoguard_decisions_total</c> can take: the
/// policy's reasons, every parser refusal, the proxy's own, and <see cref="Other"/> for anything else,
/// so a new or unexpected reason string can never grow the label set. The gate is what gives decisions
/// their reasons, so the set is defined here and handed to <see cref="ProxyMetrics"/> by whoever makes it.
/// </summary>
internal static class DecisionReasons
{
    public const string Other = LabelValues.Other;

    private const string GrantPrefix = "grant:";
    private const string Grant = "grant";

    private static readonly string[] PolicyReasons =
    [
        Reasons.Allowed, Reasons.ObserveMode, Reasons.Unauthenticated, Reasons.BadCredentials, Reasons.Suspended,
        Reasons.PortNotAllowed, Reasons.PrivateDestination, Reasons.MetadataDestination, Reasons.TunnelLimit,
        Reasons.EgressBudget, Reasons.RuleDeny, Reasons.RuleAllow, Reasons.DomainBlocked, Reasons.OutsideWindow,
        Reasons.RateLimit, Reasons.FanOut, Reasons.DefaultAllow, Reasons.DefaultDeny, Reasons.SniMismatch,
        Reasons.SniMissing, Reasons.SniEch, Reasons.NotTls, Reasons.PolicyRevoked, Reasons.WindowClosed,
        Reasons.CredentialMisdirected, Reasons.CredentialRequired, Reasons.CredentialWindow, Reasons.CredentialRateLimit,
        Reasons.ApprovalRequired, Reasons.ApprovalDenied, Reasons.ApprovalTimeout, Reasons.ApprovalQueueFull,
    ];

    /// <summary>
    /// The label values: <see cref="Other"/>, then <c>grant</c> (a grant's reason names the grant,
    /// "grant:INC-4711": one label for all of them), then every reason above, the proxy's and the parser's.
    /// </summary>
    public static readonly LabelValues Labels = new(
        PolicyReasons.Prepend(Grant).Concat(ProxyReasons.All).Append(Reasons.AuthRequired).Concat(Enum.GetValues<ParseError>().Where(e => e != ParseError.None).Select(ParseErrors.Reason)),
        foldPrefix: GrantPrefix,
        foldInto: Grant);

    /// <summary>Label values by index; <see cref="Other"/> is index 0.</summary>
    public static string[] Names => Labels.Names;

    public static int Count => Labels.Count;

    /// <summary>The label index of a reason: allocation-free, lock-free; unknown and null map to <see cref="Other"/>.</summary>
    public static int IndexOf(string? reason) => Labels.IndexOf(reason);
}
