using System.Collections.Frozen;
using ChronoGuard.Http;
using ChronoGuard.Policy;

namespace ChronoGuard.Stats;

/// <summary>
/// The fixed set of values the <c>reason</c> label of <c>chronoguard_decisions_total</c> can take: the
/// policy's reasons, every parser refusal, the proxy's own, and <see cref="Other"/> for anything else,
/// so a new or unexpected reason string can never grow the label set.
/// </summary>
internal static class DecisionReasons
{
    public const string Other = "other";

    private static readonly string[] PolicyReasons =
    [
        Reasons.Allowed, Reasons.ObserveMode, Reasons.Unauthenticated, Reasons.BadCredentials, Reasons.Suspended,
        Reasons.PortNotAllowed, Reasons.PrivateDestination, Reasons.MetadataDestination, Reasons.TunnelLimit,
        Reasons.EgressBudget, Reasons.RuleDeny, Reasons.RuleAllow, Reasons.DomainBlocked, Reasons.OutsideWindow,
        Reasons.RateLimit, Reasons.FanOut, Reasons.DefaultAllow, Reasons.DefaultDeny, Reasons.SniMismatch,
        Reasons.SniMissing, Reasons.SniEch, Reasons.NotTls, Reasons.PolicyRevoked, Reasons.WindowClosed,
    ];

    /// <summary>Label values by index; <see cref="Other"/> is index 0.</summary>
    public static readonly string[] Names = Build();

    private static readonly FrozenDictionary<string, int> Index = Names.Select((name, i) => (name, i)).ToFrozenDictionary(p => p.name, p => p.i, StringComparer.Ordinal);

    private const string GrantPrefix = "grant:";
    private const string Grant = "grant";
    private static readonly int GrantIndex = Array.IndexOf(Names, Grant);

    public static int Count => Names.Length;

    /// <summary>The label index of a reason: allocation-free, lock-free; unknown and null map to <see cref="Other"/>.</summary>
    public static int IndexOf(string? reason)
    {
        if (reason is null)
        {
            return 0;
        }

        if (Index.TryGetValue(reason, out var i))
        {
            return i;
        }

        // A grant's reason names the grant ("grant:INC-4711"): one label for all of them.
        return reason.StartsWith(GrantPrefix, StringComparison.Ordinal) ? GrantIndex : 0;
    }

    private static string[] Build()
    {
        var names = new List<string> { Other, Grant };
        foreach (var reason in PolicyReasons.Concat(Proxy.ProxyReasons.All).Append(Reasons.AuthRequired).Concat(Enum.GetValues<ParseError>().Where(e => e != ParseError.None).Select(ParseErrors.Reason)))
        {
            if (!names.Contains(reason))
            {
                names.Add(reason);
            }
        }

        return [.. names];
    }
}
