using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using ChronoGuard.Audit;
using ChronoGuard.Policy;

namespace ChronoGuard.Sidecar.Cli;

/// <summary>
/// <c>policy suggest</c> (SPEC §9): decision records in, a policy draft out (JSON with comments) that
/// allows what the records show was asked for: allowed requests (observe mode's included), refusals
/// nothing decided (<c>default_deny</c>), ports refused by <c>allowedPorts</c>, and names whose address
/// the network guard refused, with the <c>allowedCidrs</c> entry that would admit it. What a policy or
/// the TLS check refused on purpose is named in a comment, never allowed. Per agent one policy, sibling
/// names folded into wildcards, ports kept.
/// </summary>
internal sealed class PolicyDraft
{
    /// <summary>How many sibling names (same parent) become one <c>*.parent</c> wildcard.</summary>
    public const int FoldSiblings = 3;

    /// <summary>The placeholder token hash: no token hashes to it, so the agent cannot authenticate until it is replaced.</summary>
    public const string TokenPlaceholder = "0000000000000000000000000000000000000000000000000000000000000000";

    private readonly SortedDictionary<string, SortedDictionary<string, Seen>> _agents = new(StringComparer.Ordinal);
    private readonly SortedDictionary<string, Seen> _cidrs = new(StringComparer.Ordinal);
    private readonly SortedDictionary<string, Seen> _refused = new(StringComparer.Ordinal);

    public int Decisions { get; private set; }

    public DateTimeOffset? First { get; private set; }

    public DateTimeOffset? Last { get; private set; }

    public int Agents => _agents.Count;

    /// <summary>Takes one record; records that are not decisions, or say nothing about a destination, are ignored.</summary>
    public void Add(AuditEntry e)
    {
        if (e.Kind != AuditKind.Decision || e.Host.Length == 0 || e.Agent.Length == 0 || e.Status == 407
            || e.Identity == AuditIdentity.Unauthenticated && e.Agent != "anonymous")
        {
            return;
        }

        Decisions++;
        First ??= e.Time;
        Last = e.Time;
        var outcome = Clean($"{e.Decision} {e.Reason}");
        var dns = e.Method == "DNS";
        var port = dns || e.Port is 80 or 443 ? 0 : e.Port;
        if (!Suggestible(e.Decision, e.Reason))
        {
            Note(_refused, $"{Clean(e.Host)}:{e.Port} (agent {Clean(e.Agent)}): {outcome}", outcome);
            return;
        }

        if (e.Agent.Contains(':', StringComparison.Ordinal))
        {
            Note(_refused, $"agent {Clean(e.Agent)}: an agent id cannot contain ':'", outcome);
            return;
        }

        var where = $"{Clean(e.Host)}:{e.Port} (agent {Clean(e.Agent)})";
        var literal = IPAddress.TryParse(e.Host, out var hostAddress);

        // The address the guard judged: the one dialed or refused, or the literal itself, judged by the
        // guard a draft's network section leaves in place (no private destination, no extra range).
        var judged = IPAddress.TryParse(e.DialedIp, out var dialed) ? dialed : hostAddress;
        var guard = judged is null ? null : NetworkGuard.Default.Check(judged);
        if (guard == Reasons.MetadataDestination)
        {
            // Neither the name nor the address: a name that leads there is the problem, not the policy.
            Note(_refused, $"{where}: {judged} is a cloud metadata address; not suggested (an agent reaching it can take the host's credentials)", outcome);
            return;
        }

        if (literal && hostAddress!.AddressFamily == AddressFamily.InterNetworkV6)
        {
            Note(_refused, $"{where}: an IPv6 literal cannot be a domain pattern; reach it by a name (its address is in allowedCidrs if the guard needs it)", outcome);
        }
        else if (DomainNames.TryNormalizeEntry(port == 0 ? e.Host : string.Create(CultureInfo.InvariantCulture, $"{e.Host}:{port}"), out var pattern) is not null
            || pattern.StartsWith("*.", StringComparison.Ordinal))
        {
            Note(_refused, $"{where}: not a domain name a pattern can hold", outcome);
        }
        else
        {
            var hosts = _agents.TryGetValue(e.Agent, out var h) ? h : _agents[e.Agent] = new(StringComparer.Ordinal);
            Note(hosts, pattern, dns ? outcome + " (DNS query)" : outcome);
        }

        if (guard is not null)
        {
            Note(_cidrs, judged!.AddressFamily == AddressFamily.InterNetwork ? $"{judged}/32" : $"{judged}/128", where).Label ??= guard;
        }
    }

    /// <summary>
    /// Refusals a draft may lift: nothing decided (<c>default_deny</c>), a port or an address the
    /// guard refused, a DNS name refused. A block, a rule, the TLS check, a credential or a budget
    /// refused on purpose; allowed requests and those refused only for a while are kept as allowed.
    /// </summary>
    private static bool Suggestible(string decision, string reason) => decision switch
    {
        "ALLOW" or "RATE_LIMITED" or "TIME_RESTRICTED" => true,
        // An approval that timed out (or that observe mode let through) was decided by nobody; one a
        // person denied stays denied.
        "DENY" => reason is Reasons.DefaultDeny or Reasons.ApprovalTimeout or Reasons.ApprovalRequired,
        "BLOCK" => reason is Reasons.PortNotAllowed or Reasons.PrivateDestination or Reasons.MetadataDestination or "dns_name_refused",
        _ => false,
    };

    private static Seen Note(SortedDictionary<string, Seen> into, string key, string what)
    {
        var seen = into.TryGetValue(key, out var s) ? s : into[key] = new Seen();
        seen.Count++;
        if (!seen.What.Contains(what))
        {
            if (seen.What.Count < 4)
            {
                seen.What.Add(what);
            }
            else
            {
                seen.Truncated = true;
            }
        }

        return seen;
    }

    /// <summary>The draft: valid input for <c>policy check</c>, commented for the person who reviews it.</summary>
    public string Render(string source)
    {
        var o = new StringBuilder();
        o.AppendLine("// chronoguard policy suggest: a DRAFT; review every line before enforcing it.");
        o.AppendLine(CultureInfo.InvariantCulture, $"// From {Clean(source)}: {Decisions} decision records about destinations{(First is { } f ? $", {f.UtcDateTime:yyyy-MM-dd'T'HH:mm:ss'Z'} to {Last!.Value.UtcDateTime:yyyy-MM-dd'T'HH:mm:ss'Z'}" : string.Empty)}.");
        o.AppendLine("// It allows what was asked for (allowed, default_deny, port or address refused), nothing else.");
        o.AppendLine(CultureInfo.InvariantCulture, $"// Folding: {FoldSiblings} or more sibling names under one parent become \"*.parent\" (which also covers deeper names,");
        o.AppendLine("// not the parent itself), never when the parent is a public suffix: one label (com), a ccTLD second level");
        o.AppendLine("// (co.uk, com.au) or a shared-hosting suffix of the Public Suffix List (github.io, s3.amazonaws.com).");
        o.AppendLine("// Ports: 80 and 443 follow network.allowedPorts; any other port stays in its pattern (name:port).");
        o.AppendLine("{");
        o.AppendLine("  \"version\": 1,");
        o.AppendLine("  \"mode\": \"enforce\",");
        o.AppendLine("  \"defaultAction\": \"deny\",");
        o.AppendLine("  \"network\": {");
        o.AppendLine("    \"allowedPorts\": [443, 80],");
        if (_cidrs.Count > 0)
        {
            o.AppendLine("    // Addresses the network guard refuses (private, loopback, link-local ...), seen for names allowed below:");
            o.AppendLine("    // each entry admits exactly that address. Prefer reaching such services another way.");
        }

        o.AppendLine("    \"allowedCidrs\": [");
        var i = 0;
        foreach (var (cidr, seen) in _cidrs)
        {
            o.AppendLine(CultureInfo.InvariantCulture, $"      {Quote(cidr)}{(++i < _cidrs.Count ? "," : string.Empty)} // {seen.Label}: {seen.Count} {(seen.Count == 1 ? "record" : "records")}, {string.Join(", ", seen.What)}{More(seen)}");
        }

        o.AppendLine("    ]");
        o.AppendLine("  },");
        o.AppendLine("  // The log holds no tokens: replace each tokenSha256 (chronoguard hash-token < token-file).");
        if (_agents.ContainsKey("anonymous"))
        {
            o.AppendLine("  // \"anonymous\" is the agent of a run without a policy file: give it a real id and token.");
        }

        o.AppendLine("  \"agents\": [");
        i = 0;
        foreach (var agent in _agents.Keys)
        {
            o.AppendLine(CultureInfo.InvariantCulture, $"    {{ \"id\": {Quote(agent)}, \"tokenSha256\": \"{TokenPlaceholder}\", \"policies\": [{Quote(agent)}] }}{(++i < _agents.Count ? "," : string.Empty)}");
        }

        o.AppendLine("  ],");
        o.AppendLine("  \"policies\": [");
        i = 0;
        foreach (var (agent, hosts) in _agents)
        {
            o.AppendLine("    {");
            o.AppendLine(CultureInfo.InvariantCulture, $"      \"name\": {Quote(agent)},");
            o.AppendLine("      \"allowedDomains\": [");
            var entries = Fold(hosts);
            for (var e = 0; e < entries.Count; e++)
            {
                o.AppendLine(CultureInfo.InvariantCulture, $"        {Quote(entries[e].Pattern)}{(e + 1 < entries.Count ? "," : string.Empty)} // {entries[e].Comment}");
            }

            o.AppendLine("      ]");
            o.AppendLine(CultureInfo.InvariantCulture, $"    }}{(++i < _agents.Count ? "," : string.Empty)}");
        }

        o.AppendLine("  ]");
        if (_refused.Count > 0)
        {
            o.AppendLine("  // Not suggested (refused on purpose, or not expressible as a pattern):");
            foreach (var (what, seen) in _refused)
            {
                o.AppendLine(CultureInfo.InvariantCulture, $"  //   {what}{(seen.Count > 1 ? $" ({seen.Count} records)" : string.Empty)}");
            }
        }

        o.AppendLine("}");
        return o.ToString();
    }

    /// <summary>
    /// Sibling names, per port, folded bottom-up: names (and wildcards already folded) whose parent is
    /// the same become <c>*.parent</c> when there are at least <see cref="FoldSiblings"/> of them and the
    /// parent is not a public suffix; repeated, so folded subtrees can fold again one level up.
    /// </summary>
    internal static List<(string Pattern, string Comment)> Fold(IReadOnlyDictionary<string, Seen> hosts)
    {
        var result = new List<(string Pattern, string Comment)>();
        var byPort = new SortedDictionary<string, List<(string Name, string Comment)>>(StringComparer.Ordinal);
        foreach (var (pattern, seen) in hosts)
        {
            var colon = pattern.IndexOf(':', StringComparison.Ordinal);
            var port = colon < 0 ? string.Empty : pattern[colon..];
            var name = colon < 0 ? pattern : pattern[..colon];
            (byPort.TryGetValue(port, out var l) ? l : byPort[port] = []).Add((name, $"{seen.Count} {(seen.Count == 1 ? "record" : "records")}: {string.Join(", ", seen.What)}{More(seen)}"));
        }

        foreach (var (port, names) in byPort)
        {
            // Base name (the wildcard's parent for "*.x") → entry; exact names and wildcards kept apart.
            var exact = names.Where(n => !IPAddress.TryParse(n.Name, out _)).ToDictionary(n => n.Name, n => n.Comment, StringComparer.Ordinal);
            var literals = names.Where(n => IPAddress.TryParse(n.Name, out _)).ToList();
            var wild = new SortedDictionary<string, List<string>>(StringComparer.Ordinal); // base → folded names
            while (true)
            {
                // Candidates: names not yet under a wildcard, and the wildcards, grouped by parent.
                var groups = exact.Keys.Where(n => !Covered(n, wild)).Select(n => (Base: n, Folded: (List<string>)[n]))
                    .Concat(wild.Select(w => (Base: w.Key, Folded: w.Value)))
                    .Where(g => g.Base.Contains('.', StringComparison.Ordinal))
                    .GroupBy(g => g.Base[(g.Base.IndexOf('.', StringComparison.Ordinal) + 1)..], StringComparer.Ordinal)
                    .Where(g => g.Select(m => m.Base).Distinct(StringComparer.Ordinal).Count() >= FoldSiblings && !PublicSuffixes.IsPublicSuffix(g.Key) && !wild.ContainsKey(g.Key))
                    .ToList();
                if (groups.Count == 0)
                {
                    break;
                }

                // The deepest parents first, all of one depth at once (they are disjoint): a new
                // wildcard may then be a sibling one level up, so regroup after each depth.
                var depth = groups.Max(g => g.Key.Count(c => c == '.'));
                foreach (var g in groups.Where(g => g.Key.Count(c => c == '.') == depth))
                {
                    var folded = new List<string>();
                    foreach (var member in g)
                    {
                        folded.AddRange(member.Folded);
                        wild.Remove(member.Base);
                    }

                    // A deeper wildcard that was no sibling (its parent too few to fold) is now covered as well.
                    foreach (var inner in wild.Keys.Where(k => Covered(k, g.Key)).ToList())
                    {
                        folded.AddRange(wild[inner]);
                        wild.Remove(inner);
                    }

                    wild[g.Key] = folded;
                }
            }

            foreach (var (name, comment) in exact.Where(e => !Covered(e.Key, wild)).OrderBy(e => e.Key, StringComparer.Ordinal))
            {
                result.Add((name + port, comment));
            }

            foreach (var (parent, folded) in wild)
            {
                folded.Sort(StringComparer.Ordinal);
                var shown = folded.Count <= 6 ? string.Join(", ", folded) : string.Join(", ", folded.Take(6)) + $" and {folded.Count - 6} more";
                result.Add(($"*.{parent}{port}", $"{folded.Count} names folded: {shown}"));
            }

            foreach (var (name, comment) in literals)
            {
                result.Add((name + port, comment + " (an IP literal: also needs its address admitted by the guard)"));
            }
        }

        result = MergePorts(result);
        result.Sort((a, b) => StringComparer.Ordinal.Compare(a.Pattern.TrimStart('*', '.'), b.Pattern.TrimStart('*', '.')));
        return result;
    }

    /// <summary>At most this many port-scoped patterns per name, so a scan of many ports still gives a draft that loads.</summary>
    public const int MaxPortsPerName = 16;

    /// <summary>
    /// A name seen on more than <see cref="MaxPortsPerName"/> ports gets ranges of adjacent ports, and,
    /// when that is still too many, one range from the lowest to the highest (said in the comment: it
    /// admits the ports between too). The compiler bounds the patterns one host can match.
    /// </summary>
    private static List<(string Pattern, string Comment)> MergePorts(List<(string Pattern, string Comment)> entries)
    {
        var byName = entries.Where(e => e.Pattern.Contains(':', StringComparison.Ordinal))
            .GroupBy(e => e.Pattern[..e.Pattern.IndexOf(':', StringComparison.Ordinal)], StringComparer.Ordinal)
            .Where(g => g.Count() > MaxPortsPerName)
            .ToList();
        if (byName.Count == 0)
        {
            return entries;
        }

        var merged = entries.Where(e => !byName.Exists(g => e.Pattern.StartsWith(g.Key + ":", StringComparison.Ordinal))).ToList();
        foreach (var g in byName)
        {
            var ports = g.Select(e => int.Parse(e.Pattern.AsSpan(g.Key.Length + 1), NumberStyles.None, CultureInfo.InvariantCulture)).Order().ToList();
            var ranges = new List<(int Lo, int Hi)>();
            foreach (var port in ports)
            {
                if (ranges.Count > 0 && ranges[^1].Hi + 1 == port)
                {
                    ranges[^1] = (ranges[^1].Lo, port);
                }
                else
                {
                    ranges.Add((port, port));
                }
            }

            if (ranges.Count > MaxPortsPerName)
            {
                merged.Add((string.Create(CultureInfo.InvariantCulture, $"{g.Key}:{ports[0]}-{ports[^1]}"), $"{ports.Count} ports seen from {ports[0]} to {ports[^1]}: this range admits the ports between them too; narrow it"));
                continue;
            }

            foreach (var (lo, hi) in ranges)
            {
                merged.Add((lo == hi ? string.Create(CultureInfo.InvariantCulture, $"{g.Key}:{lo}") : string.Create(CultureInfo.InvariantCulture, $"{g.Key}:{lo}-{hi}"), $"{ports.Count(p => p >= lo && p <= hi)} ports seen, adjacent"));
            }
        }

        return merged;
    }

    /// <summary>Some wildcard parent is a proper suffix of <paramref name="name"/> (whole labels).</summary>
    private static bool Covered(string name, SortedDictionary<string, List<string>> wildcardParents)
    {
        for (var dot = name.IndexOf('.', StringComparison.Ordinal); dot >= 0; dot = name.IndexOf('.', dot + 1))
        {
            if (wildcardParents.ContainsKey(name[(dot + 1)..]))
            {
                return true;
            }
        }

        return false;
    }

    private static bool Covered(string name, string parent) =>
        name.Length > parent.Length + 1 && name.EndsWith(parent, StringComparison.Ordinal) && name[name.Length - parent.Length - 1] == '.';

    private static string More(Seen seen) => seen.Truncated ? ", ..." : string.Empty;

    private static string Quote(string s) => "\"" + JsonEncodedText.Encode(s, JavaScriptEncoder.UnsafeRelaxedJsonEscaping) + "\"";

    /// <summary>Text from the log inside a // comment: no line break can end the comment early.</summary>
    private static string Clean(string s)
    {
        var b = new StringBuilder(s.Length);
        foreach (var c in s)
        {
            b.Append(char.IsControl(c) || c is '\u2028' or '\u2029' ? '?' : c);
        }

        return b.ToString();
    }

    internal sealed class Seen
    {
        public int Count { get; set; }

        /// <summary>The first few distinct outcomes (or reasons) seen.</summary>
        public List<string> What { get; } = [];

        public bool Truncated { get; set; }

        /// <summary>What the entry is about (the guard's reason for an address).</summary>
        public string? Label { get; set; }
    }
}
