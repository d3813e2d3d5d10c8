using System.Text;
using System.Text.Json;

namespace ChronoGuard.Policy;

/// <summary>
/// Reads a policy file into a <see cref="PolicyDocument"/>, checking every value's JSON type before it
/// is used: a null, a number where a string belongs, an unknown or repeated key, nesting past
/// <see cref="MaxDepth"/> are each a <see cref="PolicyProblem"/> naming the JSON path (or the line and
/// column of a syntax error) in plain words. Hand-written over <see cref="JsonDocument"/> rather than a
/// serializer so that no input shape can surface as an exception from the runtime.
/// </summary>
internal static class PolicyReader
{
    /// <summary>The deepest valid document is 9 levels (root, policies, policy, rules, rule, when, condition, value, item).</summary>
    public const int MaxDepth = 16;

    public static PolicyDocument Read(ReadOnlyMemory<byte> utf8)
    {
        if (utf8.Span.StartsWith("\uFEFF"u8))
        {
            utf8 = utf8[3..];
        }

        JsonDocument json;
        try
        {
            json = JsonDocument.Parse(utf8, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true, MaxDepth = MaxDepth });
        }
        catch (JsonException ex)
        {
            throw new PolicyProblem(JsonSyntax.Position(utf8.Span, ex) ?? "$", JsonSyntax.Problem(utf8.Span, ex, MaxDepth));
        }

        using (json)
        {
            return Document(json.RootElement, "$");
        }
    }

    private static PolicyDocument Document(JsonElement e, string at)
    {
        var doc = new PolicyDocument();
        var hasVersion = false;
        foreach (var (name, value, path) in Properties(e, at))
        {
            switch (name)
            {
                case "version": doc.Version = Int(value, path, int.MinValue, int.MaxValue); hasVersion = true; break;
                case "mode": doc.Mode = Str(value, path); break;
                case "defaultAction": doc.DefaultAction = Str(value, path); break;
                case "network": doc.Network = Network(value, path); break;
                case "agents": doc.Agents = List(value, path, Agent); break;
                case "policies": doc.Policies = List(value, path, Policy); break;
                case "grants": doc.Grants = List(value, path, Grant); break;
                case "credentials": doc.Credentials = List(value, path, Credential); break;
                default: throw Unknown(name, at, "version, mode, defaultAction, network, agents, policies, grants, credentials");
            }
        }

        return hasVersion ? doc : throw new PolicyProblem("$.version", "is required (1)");
    }

    private static NetworkEntry Network(JsonElement e, string at)
    {
        var n = new NetworkEntry();
        foreach (var (name, value, path) in Properties(e, at))
        {
            switch (name)
            {
                case "allowPrivateDestinations": n.AllowPrivateDestinations = Bool(value, path); break;
                case "allowedCidrs": n.AllowedCidrs = Strings(value, path); break;
                case "allowedPorts": n.AllowedPorts = List(value, path, static (v, p) => Int(v, p, 1, 65535)); break;
                case "requireSniMatch": n.RequireSniMatch = Bool(value, path); break;
                default: throw Unknown(name, at, "allowPrivateDestinations, allowedCidrs, allowedPorts, requireSniMatch");
            }
        }

        return n;
    }

    private static AgentEntry Agent(JsonElement e, string at)
    {
        var a = new AgentEntry();
        foreach (var (name, value, path) in Properties(e, at))
        {
            switch (name)
            {
                case "id": a.Id = Str(value, path); break;
                case "tokenSha256": a.TokenSha256 = Str(value, path); break;
                case "status": a.Status = Str(value, path); break;
                case "policies": a.Policies = Strings(value, path); break;
                default: throw Unknown(name, at, "id, tokenSha256, status, policies");
            }
        }

        return a;
    }

    private static PolicyEntry Policy(JsonElement e, string at)
    {
        var p = new PolicyEntry();
        foreach (var (name, value, path) in Properties(e, at))
        {
            switch (name)
            {
                case "name": p.Name = Str(value, path); break;
                case "priority": p.Priority = Int(value, path, int.MinValue, int.MaxValue); break;
                case "extends": p.Extends = Strings(value, path); break;
                case "allowedDomains": p.AllowedDomains = Strings(value, path); break;
                case "blockedDomains": p.BlockedDomains = Strings(value, path); break;
                case "presets": p.Presets = Strings(value, path); break;
                case "inspect": p.Inspect = Strings(value, path); break;
                case "unlisted": p.Unlisted = Str(value, path); break;
                case "timeRestrictions": p.TimeRestrictions = Window(value, path); break;
                case "rateLimits": p.RateLimits = Limits(value, path); break;
                case "rateLimitScope": p.RateLimitScope = Str(value, path); break;
                case "egressBytesPerDay": p.EgressBytesPerDay = Long(value, path); break;
                case "maxNewDomainsPerHour": p.MaxNewDomainsPerHour = Int(value, path, int.MinValue, int.MaxValue); break;
                case "dnsTypes": p.DnsTypes = Strings(value, path); break;
                case "rules": p.Rules = List(value, path, Rule); break;
                default: throw Unknown(name, at, "name, priority, extends, allowedDomains, blockedDomains, presets, inspect, unlisted, timeRestrictions, rateLimits, rateLimitScope, egressBytesPerDay, maxNewDomainsPerHour, dnsTypes, rules");
            }
        }

        return p;
    }

    private static TimeRestrictionsEntry Window(JsonElement e, string at)
    {
        var t = new TimeRestrictionsEntry();
        foreach (var (name, value, path) in Properties(e, at))
        {
            switch (name)
            {
                case "timezone": t.Timezone = Str(value, path); break;
                case "days": t.Days = Strings(value, path); break;
                case "ranges": t.Ranges = List(value, path, Range); break;
                default: throw Unknown(name, at, "timezone, days, ranges");
            }
        }

        return t;
    }

    private static TimeRangeEntry Range(JsonElement e, string at)
    {
        var r = new TimeRangeEntry();
        foreach (var (name, value, path) in Properties(e, at))
        {
            switch (name)
            {
                case "start": r.Start = Str(value, path); break;
                case "end": r.End = Str(value, path); break;
                default: throw Unknown(name, at, "start, end");
            }
        }

        return r;
    }

    private static RateLimitsEntry Limits(JsonElement e, string at)
    {
        var r = new RateLimitsEntry();
        foreach (var (name, value, path) in Properties(e, at))
        {
            switch (name)
            {
                case "requestsPerMinute": r.RequestsPerMinute = Int(value, path, int.MinValue, int.MaxValue); break;
                case "requestsPerHour": r.RequestsPerHour = Int(value, path, int.MinValue, int.MaxValue); break;
                case "requestsPerDay": r.RequestsPerDay = Int(value, path, int.MinValue, int.MaxValue); break;
                case "burst": r.Burst = Int(value, path, int.MinValue, int.MaxValue); break;
                default: throw Unknown(name, at, "requestsPerMinute, requestsPerHour, requestsPerDay, burst");
            }
        }

        return r;
    }

    private static RuleEntry Rule(JsonElement e, string at)
    {
        var r = new RuleEntry();
        foreach (var (name, value, path) in Properties(e, at))
        {
            switch (name)
            {
                case "name": r.Name = Str(value, path); break;
                case "priority": r.Priority = Int(value, path, int.MinValue, int.MaxValue); break;
                case "action": r.Action = Str(value, path); break;
                case "when": r.When = List(value, path, Condition); break;
                default: throw Unknown(name, at, "name, priority, action, when");
            }
        }

        return r;
    }

    private static ConditionEntry Condition(JsonElement e, string at)
    {
        var c = new ConditionEntry();
        foreach (var (name, value, path) in Properties(e, at))
        {
            switch (name)
            {
                case "field": c.Field = Str(value, path); break;
                case "op": c.Op = Str(value, path); break;
                case "value":
                    c.ValueIsArray = value.ValueKind == JsonValueKind.Array;
                    c.Values = c.ValueIsArray ? List(value, path, Scalar) : [Scalar(value, path)];
                    if (c.Values.Count == 0)
                    {
                        throw new PolicyProblem(path, "must not be empty");
                    }

                    break;
                case "ignoreCase": c.IgnoreCase = Bool(value, path); break;
                default: throw Unknown(name, at, "field, op, value, ignoreCase");
            }
        }

        return c;
    }

    private static GrantEntry Grant(JsonElement e, string at)
    {
        var g = new GrantEntry();
        foreach (var (name, value, path) in Properties(e, at))
        {
            switch (name)
            {
                case "agent": g.Agent = Str(value, path); break;
                case "domains": g.Domains = Strings(value, path); break;
                case "expires":
                    var text = Str(value, path);
                    g.Expires = value.TryGetDateTimeOffset(out var t) ? t : throw new PolicyProblem(path, $"\"{text}\" is not an ISO-8601 time such as 2026-11-23T18:00:00Z");
                    break;
                case "reason": g.Reason = Str(value, path); break;
                default: throw Unknown(name, at, "agent, domains, expires, reason");
            }
        }

        return g;
    }

    private static CredentialEntry Credential(JsonElement e, string at)
    {
        var c = new CredentialEntry();
        foreach (var (name, value, path) in Properties(e, at))
        {
            switch (name)
            {
                case "name": c.Name = Str(value, path); break;
                case "agents": c.Agents = Strings(value, path); break;
                case "domains": c.Domains = Strings(value, path); break;
                case "header": c.Header = Str(value, path); break;
                case "value": c.Value = Str(value, path); break;
                case "secretFile": c.SecretFile = Str(value, path); break;
                case "secretEnv": c.SecretEnv = Str(value, path); break;
                case "placeholder": c.Placeholder = Str(value, path); break;
                case "require": c.Require = Bool(value, path); break;
                case "timeRestrictions": c.TimeRestrictions = Window(value, path); break;
                case "rateLimits": c.RateLimits = Limits(value, path); break;
                default: throw Unknown(name, at, "name, agents, domains, header, value, secretFile, secretEnv, placeholder, require, timeRestrictions, rateLimits");
            }
        }

        return c;
    }

    /// <summary>The object's members with their paths; a repeated key is an error (which one would win is a guess).</summary>
    private static List<(string Name, JsonElement Value, string Path)> Properties(JsonElement e, string at)
    {
        Expect(e, JsonValueKind.Object, at, "an object");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var members = new List<(string, JsonElement, string)>();
        foreach (var p in e.EnumerateObject())
        {
            if (!seen.Add(p.Name))
            {
                throw new PolicyProblem(at, $"the key \"{p.Name}\" appears twice");
            }

            members.Add((p.Name, p.Value, $"{at}.{p.Name}"));
        }

        return members;
    }

    private static List<T> List<T>(JsonElement e, string at, Func<JsonElement, string, T> item)
    {
        Expect(e, JsonValueKind.Array, at, "an array");
        var list = new List<T>(e.GetArrayLength());
        var i = 0;
        foreach (var element in e.EnumerateArray())
        {
            list.Add(item(element, $"{at}[{i++}]"));
        }

        return list;
    }

    private static List<string> Strings(JsonElement e, string at) => List(e, at, Str);

    private static string Str(JsonElement e, string at)
    {
        Expect(e, JsonValueKind.String, at, "a string");
        return e.GetString()!;
    }

    private static string Scalar(JsonElement e, string at) => e.ValueKind switch
    {
        JsonValueKind.String => e.GetString()!,
        JsonValueKind.Number => e.GetRawText(),
        _ => throw new PolicyProblem(at, $"must be a string or a number, not {Describe(e)}"),
    };

    private static bool Bool(JsonElement e, string at) => e.ValueKind switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => throw new PolicyProblem(at, $"must be true or false, not {Describe(e)}"),
    };

    private static int Int(JsonElement e, string at, int min, int max)
    {
        Expect(e, JsonValueKind.Number, at, "a whole number");
        return e.TryGetInt32(out var v) && v >= min && v <= max
            ? v
            : throw new PolicyProblem(at, min == int.MinValue ? $"{e.GetRawText()} is not a whole number in range" : $"{e.GetRawText()} is not a whole number from {min} to {max}");
    }

    private static long Long(JsonElement e, string at)
    {
        Expect(e, JsonValueKind.Number, at, "a whole number");
        return e.TryGetInt64(out var v) ? v : throw new PolicyProblem(at, $"{e.GetRawText()} is not a whole number in range");
    }

    private static void Expect(JsonElement e, JsonValueKind kind, string at, string what)
    {
        if (e.ValueKind != kind)
        {
            throw new PolicyProblem(at, e.ValueKind == JsonValueKind.Null ? $"is null; write {what} or leave the key out" : $"must be {what}, not {Describe(e)}");
        }
    }

    private static string Describe(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "true/false",
        _ => "null",
    };

    private static PolicyProblem Unknown(string name, string at, string known) =>
        new(at, $"unknown key \"{name}\" (known: {known})");
}
