namespace ChronoGuard.Policy;

// The policy file as written (SPEC §4). Plain DTOs filled by PolicyReader, which has already checked
// every value's JSON type (so no list holds a null); PolicyCompiler checks what the values mean and
// turns them into the immutable CompiledPolicy.

internal sealed class PolicyDocument
{
    public int Version { get; set; }

    public string? Mode { get; set; }

    public string? DefaultAction { get; set; }

    public NetworkEntry? Network { get; set; }

    public List<AgentEntry>? Agents { get; set; }

    public List<PolicyEntry>? Policies { get; set; }

    public List<GrantEntry>? Grants { get; set; }

    public List<CredentialEntry>? Credentials { get; set; }
}

internal sealed class NetworkEntry
{
    public bool AllowPrivateDestinations { get; set; }

    public List<string>? AllowedCidrs { get; set; }

    public List<int>? AllowedPorts { get; set; }

    public bool? RequireSniMatch { get; set; }
}

internal sealed class AgentEntry
{
    public string? Id { get; set; }

    public string? TokenSha256 { get; set; }

    public string? Status { get; set; }

    public List<string>? Policies { get; set; }
}

internal sealed class PolicyEntry
{
    public string? Name { get; set; }

    public int Priority { get; set; }

    public List<string>? Extends { get; set; }

    public List<string>? AllowedDomains { get; set; }

    public List<string>? BlockedDomains { get; set; }

    /// <summary>Built-in allow-lists (SPEC §9) whose patterns join <see cref="AllowedDomains"/>.</summary>
    public List<string>? Presets { get; set; }

    /// <summary>Hosts whose tunnels are TLS-terminated so each inner request is decided (SPEC §7).</summary>
    public List<string>? Inspect { get; set; }

    /// <summary><c>"ask"</c>: for agents under this policy, what nothing allows or blocks is held for approval (SPEC §9).</summary>
    public string? Unlisted { get; set; }

    public TimeRestrictionsEntry? TimeRestrictions { get; set; }

    public RateLimitsEntry? RateLimits { get; set; }

    public string? RateLimitScope { get; set; }

    public long? EgressBytesPerDay { get; set; }

    public int? MaxNewDomainsPerHour { get; set; }

    /// <summary>DNS query types the DNS guard answers beyond A, AAAA, CNAME, HTTPS and SVCB (SPEC §10).</summary>
    public List<string>? DnsTypes { get; set; }

    public List<RuleEntry>? Rules { get; set; }
}

internal sealed class TimeRestrictionsEntry
{
    public string? Timezone { get; set; }

    public List<string>? Days { get; set; }

    public List<TimeRangeEntry>? Ranges { get; set; }
}

internal sealed class TimeRangeEntry
{
    public string? Start { get; set; }

    public string? End { get; set; }
}

internal sealed class RateLimitsEntry
{
    public int? RequestsPerMinute { get; set; }

    public int? RequestsPerHour { get; set; }

    public int? RequestsPerDay { get; set; }

    public int? Burst { get; set; }
}

internal sealed class RuleEntry
{
    public string? Name { get; set; }

    public int Priority { get; set; }

    public string? Action { get; set; }

    public List<ConditionEntry>? When { get; set; }
}

internal sealed class ConditionEntry
{
    public string? Field { get; set; }

    public string? Op { get; set; }

    /// <summary>The value's strings (a number as written); null when the key is absent.</summary>
    public List<string>? Values { get; set; }

    /// <summary>The value was written as an array (required by <c>in</c>/<c>not_in</c>).</summary>
    public bool ValueIsArray { get; set; }

    /// <summary><c>ignoreCase</c>: compare <c>path</c> or <c>user_agent</c> without regard to ASCII case.</summary>
    public bool IgnoreCase { get; set; }
}

internal sealed class GrantEntry
{
    public string? Agent { get; set; }

    public List<string>? Domains { get; set; }

    public DateTimeOffset? Expires { get; set; }

    public string? Reason { get; set; }
}

/// <summary>One entry of <c>credentials</c> (SPEC §7). The secret itself is never in the document, only where to read it.</summary>
internal sealed class CredentialEntry
{
    public string? Name { get; set; }

    public List<string>? Agents { get; set; }

    public List<string>? Domains { get; set; }

    public string? Header { get; set; }

    public string? Value { get; set; }

    public string? SecretFile { get; set; }

    public string? SecretEnv { get; set; }

    public string? Placeholder { get; set; }

    public bool Require { get; set; }

    public TimeRestrictionsEntry? TimeRestrictions { get; set; }

    public RateLimitsEntry? RateLimits { get; set; }
}
