using System.Globalization;
using System.Net;

namespace ChronoGuard.Policy;

internal static partial class PolicyCompiler
{
    /// <summary>
    /// Stage 1: every value of the document checked for what it means (the reader has checked its
    /// JSON type) and turned into its compiled form. The only stage that reports problems in the
    /// input, by throwing <see cref="PolicyProblem"/>.
    /// </summary>
    private static PolicyInput Validate(PolicyDocument doc, bool inspectionConfigured, bool approvalsConfigured = false)
    {
        if (doc.Version != 1)
        {
            throw new PolicyProblem("$.version", $"must be 1 (got {doc.Version})");
        }

        var observe = doc.Mode switch
        {
            null or "enforce" => false,
            "observe" => true,
            _ => throw new PolicyProblem("$.mode", $"must be \"enforce\" or \"observe\" (got \"{doc.Mode}\")"),
        };
        var defaultAllow = doc.DefaultAction switch
        {
            null or "deny" or "ask" => false,
            "allow" => true,
            _ => throw new PolicyProblem("$.defaultAction", $"must be \"allow\", \"deny\" or \"ask\" (got \"{doc.DefaultAction}\")"),
        };
        if (doc.DefaultAction == "ask" && !approvalsConfigured)
        {
            throw new PolicyProblem("$.defaultAction", NeedsApprovals);
        }

        var entries = (doc.Policies ?? []).ToArray();
        var byName = PolicyNames(entries);
        var patterns = new List<string>();
        var patternIds = new Dictionary<string, int>(StringComparer.Ordinal);
        var input = new PolicyInput
        {
            Observe = observe,
            DefaultAllow = defaultAllow,
            DefaultAsk = doc.DefaultAction == "ask",
            ApprovalsConfigured = approvalsConfigured,
            InspectionConfigured = inspectionConfigured,
            Network = ValidateNetwork(doc.Network),
            Entries = entries,
            Parents = new int[entries.Length][],
            Patterns = patterns,
            PatternIds = patternIds,
            OwnAllowed = new int[entries.Length][],
            OwnBlocked = new int[entries.Length][],
            OwnInspect = new int[entries.Length][],
            OwnRules = new List<Rule>[entries.Length],
            Windows = new TimeWindow?[entries.Length],
            Limits = new RateLimits?[entries.Length],
        };

        for (var i = 0; i < entries.Length; i++)
        {
            ValidatePolicy(input, i, byName);
        }

        input.Agents = ValidateAgents(doc.Agents ?? [], byName);
        input.Grants = ValidateGrants(doc.Grants ?? [], input.Agents, patterns, patternIds);
        return input;
    }

    /// <summary>Why <c>inspect</c> or <c>credentials</c> cannot load (SPEC §7): TLS cannot be terminated without a CA.</summary>
    internal const string NeedsApprovals = "\"ask\" holds requests until an operator approves them, which needs the admin API (set Admin:Listen and Admin:TokenSha256)";

    internal const string NeedsInspection = "needs HTTPS inspection, which is not configured (set Inspection:CaCertFile and Inspection:CaKeyFile; chronoguard ca init makes them)";

    private static Dictionary<string, int> PolicyNames(PolicyEntry[] entries)
    {
        var byName = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < entries.Length; i++)
        {
            var name = entries[i].Name;
            if (string.IsNullOrWhiteSpace(name))
            {
                throw new PolicyProblem($"$.policies[{i}].name", "is required");
            }

            if (!byName.TryAdd(name, i))
            {
                throw new PolicyProblem($"$.policies[{i}].name", $"duplicate policy name \"{name}\"");
            }
        }

        return byName;
    }

    private static void ValidatePolicy(PolicyInput input, int i, Dictionary<string, int> byName)
    {
        var e = input.Entries[i];
        var at = $"$.policies[{i}]";
        input.OwnAllowed[i] = DomainList(e.AllowedDomains, $"{at}.allowedDomains", input.Patterns, input.PatternIds);
        input.OwnBlocked[i] = DomainList(e.BlockedDomains, $"{at}.blockedDomains", input.Patterns, input.PatternIds);
        DeadAllows(input, i);
        AddPresets(input, i, $"{at}.presets");
        input.OwnInspect[i] = DomainList(e.Inspect, $"{at}.inspect", input.Patterns, input.PatternIds);
        if (input.OwnInspect[i].Length > 0 && !input.InspectionConfigured)
        {
            throw new PolicyProblem($"{at}.inspect", NeedsInspection);
        }

        switch (e.Unlisted)
        {
            case null:
                break;
            case "ask" when !input.ApprovalsConfigured:
                throw new PolicyProblem($"{at}.unlisted", NeedsApprovals);
            case "ask":
                break;
            default:
                throw new PolicyProblem($"{at}.unlisted", $"must be \"ask\" (got \"{e.Unlisted}\"); without it, defaultAction decides what the policy does not list");
        }

        input.OwnRules[i] = CompileRules(e, at);
        var extends = e.Extends ?? [];
        var parents = new List<int>(extends.Count);
        for (var p = 0; p < extends.Count; p++)
        {
            if (!byName.TryGetValue(extends[p], out var parent))
            {
                throw new PolicyProblem($"{at}.extends", $"unknown policy \"{extends[p]}\"");
            }

            if (!parents.Contains(parent))
            {
                parents.Add(parent);
            }
        }

        input.Parents[i] = [.. parents];
        if (e.RateLimitScope is not (null or "agent" or "agent_domain"))
        {
            throw new PolicyProblem($"{at}.rateLimitScope", $"must be \"agent\" or \"agent_domain\" (got \"{e.RateLimitScope}\")");
        }

        if (e.EgressBytesPerDay is < 0)
        {
            throw new PolicyProblem($"{at}.egressBytesPerDay", "must not be negative");
        }

        if (e.MaxNewDomainsPerHour is <= 0)
        {
            throw new PolicyProblem($"{at}.maxNewDomainsPerHour", "must be greater than 0");
        }

        for (var d = 0; d < (e.DnsTypes?.Count ?? 0); d++)
        {
            if (!DnsTypeNames.TryParse(e.DnsTypes![d], out _))
            {
                throw new PolicyProblem($"{at}.dnsTypes[{d}]", $"\"{e.DnsTypes[d]}\" is not a DNS type (a name such as TXT, MX, SRV, or TYPE<number>)");
            }
        }

        input.Limits[i] = ValidateLimits(e.RateLimits, $"{at}.rateLimits");
        input.Windows[i] = e.TimeRestrictions is { } t ? CompileWindow(t, $"{at}.timeRestrictions") : null;
    }

    private static (string, byte[], bool, int[])[] ValidateAgents(List<AgentEntry> agentsDoc, Dictionary<string, int> byName)
    {
        if (agentsDoc.Count > MaxAgents)
        {
            throw new PolicyProblem("$.agents", $"{agentsDoc.Count} agents; at most {MaxAgents}");
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        var agents = new (string, byte[], bool, int[])[agentsDoc.Count];
        for (var i = 0; i < agentsDoc.Count; i++)
        {
            var a = agentsDoc[i];
            var at = $"$.agents[{i}]";
            if (string.IsNullOrWhiteSpace(a.Id) || a.Id.Contains(':', StringComparison.Ordinal))
            {
                throw new PolicyProblem($"{at}.id", "is required and must not contain ':'");
            }

            if (!seen.Add(a.Id))
            {
                throw new PolicyProblem($"{at}.id", $"duplicate agent \"{a.Id}\"");
            }

            if (a.TokenSha256 is not { Length: 64 } hex || !IsHex(hex))
            {
                throw new PolicyProblem($"{at}.tokenSha256", "must be 64 hex characters (chronoguard hash-token)");
            }

            var suspended = a.Status switch
            {
                null or "active" => false,
                "suspended" => true,
                _ => throw new PolicyProblem($"{at}.status", $"must be \"active\" or \"suspended\" (got \"{a.Status}\")"),
            };
            var names = a.Policies ?? [];
            if (names.Count > MaxPoliciesPerAgent)
            {
                throw new PolicyProblem($"{at}.policies", $"{names.Count} policies; at most {MaxPoliciesPerAgent}");
            }

            var policies = new List<int>(names.Count);
            for (var p = 0; p < names.Count; p++)
            {
                if (!byName.TryGetValue(names[p], out var index))
                {
                    throw new PolicyProblem($"{at}.policies[{p}]", $"unknown policy \"{names[p]}\"");
                }

                if (!policies.Contains(index))
                {
                    policies.Add(index);
                }
            }

            agents[i] = (a.Id, Convert.FromHexString(hex), suspended, [.. policies]);
        }

        return agents;
    }

    private static (string, DateTimeOffset, string, int[])[] ValidateGrants(List<GrantEntry> grants, (string Id, byte[], bool, int[])[] agents, List<string> patterns, Dictionary<string, int> patternIds)
    {
        var agentIds = new HashSet<string>(StringComparer.Ordinal);
        foreach (var a in agents)
        {
            agentIds.Add(a.Id);
        }

        var result = new (string, DateTimeOffset, string, int[])[grants.Count];
        for (var g = 0; g < grants.Count; g++)
        {
            var grant = grants[g];
            var at = $"$.grants[{g}]";
            if (string.IsNullOrEmpty(grant.Agent) || !agentIds.Contains(grant.Agent))
            {
                throw new PolicyProblem($"{at}.agent", $"unknown agent \"{grant.Agent}\"");
            }

            if (grant.Expires is not { } expires)
            {
                throw new PolicyProblem($"{at}.expires", "is required (an ISO-8601 time)");
            }

            result[g] = (grant.Agent, expires, "grant:" + (grant.Reason ?? $"#{g}"), DomainList(grant.Domains, $"{at}.domains", patterns, patternIds));
        }

        return result;
    }

    private static NetworkGuard ValidateNetwork(NetworkEntry? n)
    {
        if (n is null)
        {
            return NetworkGuard.Default;
        }

        var cidrs = new List<IPNetwork>();
        var list = n.AllowedCidrs ?? [];
        for (var i = 0; i < list.Count; i++)
        {
            if (!IPNetwork.TryParse(list[i], out var net))
            {
                throw new PolicyProblem($"$.network.allowedCidrs[{i}]", $"\"{list[i]}\" is not a CIDR range");
            }

            cidrs.Add(net);
        }

        // The reader has already bounded each port to 1..65535.
        return new NetworkGuard(n.AllowPrivateDestinations, cidrs, n.AllowedPorts ?? NetworkGuard.DefaultPorts, n.RequireSniMatch ?? true);
    }

    /// <summary>
    /// SPEC §4: the same domain in both lists of one policy's own entry is a load error (blocked wins,
    /// so the allow could never hold). With ports, an allow is dead when a block of the same name
    /// covers all its ports: a block without a port, or a range holding the allowed one.
    /// <c>github.com</c> allowed beside <c>github.com:22</c> blocked is fine: every port but 22.
    /// </summary>
    private static void DeadAllows(PolicyInput input, int i)
    {
        var blocked = new Dictionary<string, List<(int Low, int High, int Id)>>(StringComparer.Ordinal);
        foreach (var id in input.OwnBlocked[i])
        {
            DomainNames.SplitPorts(input.Patterns[id], out var name, out var lo, out var hi);
            (blocked.TryGetValue(name, out var ranges) ? ranges : blocked[name] = []).Add((lo, hi, id));
        }

        foreach (var id in input.OwnAllowed[i])
        {
            DomainNames.SplitPorts(input.Patterns[id], out var name, out var lo, out var hi);
            if (!blocked.TryGetValue(name, out var ranges) || !ranges.Exists(r => r.Low <= lo && r.High >= hi))
            {
                continue;
            }

            var by = input.Patterns[ranges.Find(r => r.Low <= lo && r.High >= hi).Id];
            throw new PolicyProblem($"$.policies[{i}]", by == input.Patterns[id]
                ? $"\"{by}\" is both allowed and blocked in policy \"{input.Entries[i].Name}\""
                : $"\"{input.Patterns[id]}\" is allowed, but \"{by}\" blocks all its ports in policy \"{input.Entries[i].Name}\"");
        }
    }

    /// <summary>
    /// A policy's <c>presets</c> join its own allowed list, as if written there, so the automaton and
    /// the masks hold them like any pattern. Added after the dead-allow check: blocking part of a
    /// preset (<c>gist.github.com</c> beside the github preset) is how one narrows it, not a mistake.
    /// </summary>
    private static void AddPresets(PolicyInput input, int i, string path)
    {
        var names = input.Entries[i].Presets ?? [];
        if (names.Count == 0)
        {
            return;
        }

        var allowed = new List<int>(input.OwnAllowed[i]);
        var seen = new HashSet<int>(allowed);
        for (var n = 0; n < names.Count; n++)
        {
            if (!PolicyPresets.TryGet(names[n], out var preset))
            {
                throw new PolicyProblem($"{path}[{n}]", $"unknown preset \"{names[n]}\" (known: {PolicyPresets.Names})");
            }

            foreach (var pattern in preset.Domains)
            {
                if (!input.PatternIds.TryGetValue(pattern, out var id))
                {
                    id = input.Patterns.Count;
                    input.PatternIds[pattern] = id;
                    input.Patterns.Add(pattern);
                }

                var sources = input.PresetPatterns.TryGetValue(id, out var s) ? s : input.PresetPatterns[id] = [];
                if (!sources.Contains((i, preset.Name)))
                {
                    sources.Add((i, preset.Name));
                }

                if (seen.Add(id))
                {
                    allowed.Add(id);
                }
            }
        }

        input.OwnAllowed[i] = [.. allowed];
    }

    private static int[] DomainList(List<string>? raw, string path, List<string> patterns, Dictionary<string, int> patternIds)
    {
        var list = raw ?? [];
        if (list.Count > MaxDomainsPerList)
        {
            throw new PolicyProblem(path, $"{list.Count} domains; at most {MaxDomainsPerList}");
        }

        var ids = new int[list.Count];
        for (var i = 0; i < list.Count; i++)
        {
            if (DomainNames.TryNormalizeEntry(list[i], out var p) is { } error)
            {
                throw new PolicyProblem($"{path}[{i}]", $"\"{list[i]}\": {error}");
            }

            if (!patternIds.TryGetValue(p, out var id))
            {
                id = patterns.Count;
                patternIds[p] = id;
                patterns.Add(p);
            }

            ids[i] = id;
        }

        return ids;
    }

    private static RateLimits? ValidateLimits(RateLimitsEntry? r, string path)
    {
        if (r is null)
        {
            return null;
        }

        foreach (var (name, value) in new[] { ("requestsPerMinute", r.RequestsPerMinute), ("requestsPerHour", r.RequestsPerHour), ("requestsPerDay", r.RequestsPerDay), ("burst", r.Burst) })
        {
            if (value is <= 0)
            {
                throw new PolicyProblem($"{path}.{name}", "must be greater than 0");
            }
        }

        return new RateLimits(r.RequestsPerMinute, r.RequestsPerHour, r.RequestsPerDay, r.Burst);
    }

    private static TimeWindow CompileWindow(TimeRestrictionsEntry t, string path)
    {
        var zone = FindZone(t.Timezone ?? "UTC") ?? throw new PolicyProblem($"{path}.timezone", $"unknown IANA time zone \"{t.Timezone}\"");
        var days = new List<DayOfWeek>();
        var rawDays = t.Days ?? ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
        for (var i = 0; i < rawDays.Count; i++)
        {
            days.Add(ParseDay(rawDays[i]) ?? throw new PolicyProblem($"{path}.days[{i}]", $"\"{rawDays[i]}\" is not a day (mon..sun)"));
        }

        var ranges = t.Ranges ?? [];
        if (ranges.Count > MaxTimeRanges)
        {
            throw new PolicyProblem($"{path}.ranges", $"{ranges.Count} ranges; at most {MaxTimeRanges}");
        }

        var compiled = new List<(int, int)>();
        for (var i = 0; i < ranges.Count; i++)
        {
            var start = ParseClock(ranges[i].Start) ?? throw new PolicyProblem($"{path}.ranges[{i}].start", ranges[i].Start is null ? "is required (HH:mm)" : $"\"{ranges[i].Start}\" is not HH:mm");
            var end = ParseClock(ranges[i].End) ?? throw new PolicyProblem($"{path}.ranges[{i}].end", ranges[i].End is null ? "is required (HH:mm, 24:00 allowed)" : $"\"{ranges[i].End}\" is not HH:mm (24:00 allowed)");
            compiled.Add((start, end));
        }

        if (compiled.Count == 0)
        {
            compiled.Add((0, 0));
        }

        return TimeWindow.Create(zone, days, compiled);
    }

    private static TimeZoneInfo? FindZone(string id)
    {
        // Zone ids name files under /usr/share/zoneinfo: refuse anything that is not a plain id first.
        if (id.Length is 0 or > 64 || id.Contains("..", StringComparison.Ordinal) || id.AsSpan().IndexOfAnyExcept(ZoneIdChars) >= 0)
        {
            return null;
        }

        try
        {
            return TimeZoneInfo.FindSystemTimeZoneById(id);
        }
        catch (Exception ex) when (ex is TimeZoneNotFoundException or InvalidTimeZoneException or ArgumentException or System.Security.SecurityException or IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static readonly System.Buffers.SearchValues<char> ZoneIdChars =
        System.Buffers.SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/_-+");

    internal static DayOfWeek? ParseDay(string s) => s.ToLowerInvariant() switch
    {
        "sun" or "sunday" => DayOfWeek.Sunday,
        "mon" or "monday" => DayOfWeek.Monday,
        "tue" or "tuesday" => DayOfWeek.Tuesday,
        "wed" or "wednesday" => DayOfWeek.Wednesday,
        "thu" or "thursday" => DayOfWeek.Thursday,
        "fri" or "friday" => DayOfWeek.Friday,
        "sat" or "saturday" => DayOfWeek.Saturday,
        _ => null,
    };

    private static int? ParseClock(string? s)
    {
        if (s is null || s.Length != 5 || s[2] != ':'
            || !int.TryParse(s.AsSpan(0, 2), NumberStyles.None, CultureInfo.InvariantCulture, out var h)
            || !int.TryParse(s.AsSpan(3, 2), NumberStyles.None, CultureInfo.InvariantCulture, out var m)
            || m > 59 || h > 24 || (h == 24 && m != 0))
        {
            return null;
        }

        return (h * 60) + m;
    }

    private static bool IsHex(string s)
    {
        foreach (var c in s)
        {
            if (!char.IsAsciiHexDigit(c))
            {
                return false;
            }
        }

        return true;
    }
}
