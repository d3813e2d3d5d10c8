using System.Net;
using System.Runtime.CompilerServices;

namespace ChronoGuard.Policy;

internal sealed partial class CompiledPolicy
{
    /// <summary>
    /// The lines <c>policy explain</c> prints, one method per step. Never inlined: string formatting
    /// inside a decision step would keep that step out of <see cref="Evaluate"/>'s frame and grow the
    /// frame the proxy zeroes on every request, for text only explain reads.
    /// </summary>
    private static class Explain
    {
        /// <summary>The port is not in allowedPorts: say which allowed port-scoped pattern admits it, or why none does.</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void Port(IDecisionTrace trace, in RequestFacts facts, int admittedBy, CompiledPolicy policy, ReadOnlySpan<int> matches)
        {
            if (admittedBy >= 0)
            {
                trace.Step($"network: port {facts.Port} is not in allowedPorts; admitted by the allowed pattern {policy.Patterns[admittedBy]}{PresetNote(policy, admittedBy, null)}");
                return;
            }

            // Why none admits it: a pattern for the name on other ports, or one on this port that is
            // not in an allowed list of the agent's policies (a block, a grant, another agent's policy).
            var why = new List<string>();
            var others = NameOnly(facts, policy);
            if (others.Length > 0)
            {
                why.Add($"{string.Join(", ", others)} {(others.Length == 1 ? "matches" : "match")} the name, not port {facts.Port}");
            }

            var notAllowed = new List<string>();
            foreach (var m in matches)
            {
                if (policy.PortScoped[m])
                {
                    notAllowed.Add(policy.Patterns[m]);
                }
            }

            if (notAllowed.Count > 0)
            {
                why.Add($"{string.Join(", ", notAllowed)} {(notAllowed.Count == 1 ? "covers" : "cover")} port {facts.Port} but {(notAllowed.Count == 1 ? "is" : "are")} in no allowed list of the agent's policies");
            }

            trace.Step($"network: port {facts.Port} is not in allowedPorts, and no port-scoped allowed pattern of the agent's policies covers it"
                + (why.Count == 0 ? string.Empty : $" ({string.Join("; ", why)})"));
        }

        /// <summary>Patterns whose name matches but whose ports do not cover the request's (only port-scoped ones can).</summary>
        private static string[] NameOnly(in RequestFacts facts, CompiledPolicy policy)
        {
            var all = new int[policy.Automaton.MaxMatches];
            var onPort = new int[policy.Automaton.MaxMatches];
            var covering = onPort.AsSpan(0, policy.Automaton.Match(facts.Host, facts.Port, onPort)).ToArray();
            var names = new List<string>();
            foreach (var m in all.AsSpan(0, policy.Automaton.MatchAnyPort(facts.Host, all)))
            {
                if (Array.IndexOf(covering, m) < 0)
                {
                    names.Add(policy.Patterns[m]);
                }
            }

            return [.. names];
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void LiteralRefused(IDecisionTrace trace, IPAddress literal, string reason) =>
            trace.Step($"network: {literal} refused ({reason})");

        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void TunnelBudget(IDecisionTrace trace, int open, int limit) =>
            trace.Step($"budget: {open} tunnels open, limit {limit}");

        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void EgressBudget(IDecisionTrace trace, long spent, long budget) =>
            trace.Step($"budget: egress today {spent} >= {budget} bytes");

        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void Matches(IDecisionTrace trace, ReadOnlySpan<int> matches, CompiledPolicy policy, in RequestFacts facts)
        {
            var names = new string[matches.Length];
            for (var i = 0; i < matches.Length; i++)
            {
                names[i] = policy.Patterns[matches[i]] + PresetNote(policy, matches[i], null);
            }

            var others = NameOnly(facts, policy);
            var elsewhere = others.Length == 0 ? string.Empty : $"; {string.Join(", ", others)} {(others.Length == 1 ? "matches" : "match")} the name, not port {facts.Port}";
            trace.Step((matches.IsEmpty ? "domain: no pattern matches" : "domain: matches " + string.Join(", ", names)) + elsewhere);
        }

        /// <summary>Which pattern of the policy's merged allowed list the host matched, and the preset it came from.</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void AllowedBy(IDecisionTrace trace, CompiledPolicy compiled, EffectivePolicy policy, ReadOnlySpan<int> matches)
        {
            foreach (var m in matches)
            {
                if (compiled.Has(compiled.AllowedMask, m, policy))
                {
                    trace.Step($"  in the allowed list: {compiled.Patterns[m]}{PresetNote(compiled, m, policy)}");
                    return;
                }
            }
        }

        /// <summary>" (preset npm)" when presets brought the pattern in: any policy's, or only those <paramref name="within"/> inherits.</summary>
        private static string PresetNote(CompiledPolicy compiled, int pattern, EffectivePolicy? within)
        {
            if (pattern >= compiled.PresetsByPattern.Length || compiled.PresetsByPattern[pattern] is not { } sources)
            {
                return string.Empty;
            }

            var names = new List<string>();
            foreach (var (declared, preset) in sources)
            {
                var text = within is null ? preset : $"{preset} of policy {compiled.DeclaredPolicies[declared]}";
                if ((within is null || within.LineagePosition.ContainsKey(declared)) && !names.Contains(text))
                {
                    names.Add(text);
                }
            }

            return names.Count == 0 ? string.Empty : $" (preset {string.Join(", preset ", names)})";
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void Inspected(IDecisionTrace trace, string pattern) =>
            trace.Step($"inspect: {pattern} is inspected: TLS is terminated and each inner request is decided on its own (method, path and user-agent conditions and bucket tokens are left to them)");

        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void LeftToInnerRequests(IDecisionTrace trace, Rule rule) =>
            trace.Step($"  rule {rule.Name} ({rule.Origin}) reads the inner request: left to the inner requests");

        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void Grant(IDecisionTrace trace, string pattern, Grant grant, bool applies) =>
            trace.Step(applies
                ? $"grant: {pattern} until {grant.Expires:O} ({grant.AuditReason})"
                : $"grant: {pattern} for {grant.Agent} does not apply (agent or expiry {grant.Expires:O})");

        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void Policy(IDecisionTrace trace, EffectivePolicy policy) =>
            trace.Step($"policy {policy.Name} (priority {policy.Priority})");

        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void RuleMatches(IDecisionTrace trace, Rule rule) =>
            trace.Step($"  rule {rule.Name} ({rule.Origin}) matches: {rule.Action}");

        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void BucketEmpty(IDecisionTrace trace, long wait) =>
            trace.Step($"  bucket empty: retry after {wait} s");

        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void Blocked(IDecisionTrace trace, string pattern, string name, string by) =>
            trace.Step($"  {pattern} is blocked by policy {name}{(name == by ? string.Empty : $" (inherited by {by})")}: blocked wins");

        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void WindowOpen(IDecisionTrace trace, TimeWindow window) =>
            trace.Step($"  time window ({window.Zone.Id}): open");

        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void WindowClosed(IDecisionTrace trace, TimeWindow window, DateTimeOffset? opens) =>
            trace.Step($"  outside the time window ({window.Zone.Id}); opens {opens:O}");

        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void FanOut(IDecisionTrace trace, int quota) =>
            trace.Step($"  {quota} new domains this hour already");

        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void Allowed(IDecisionTrace trace, string? byRule) =>
            trace.Step(byRule is null ? "  allowed" : $"  allowed by rule {byRule}");
    }
}
