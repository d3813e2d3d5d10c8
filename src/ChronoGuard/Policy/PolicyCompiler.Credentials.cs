using System.Text;

namespace ChronoGuard.Policy;

internal static partial class PolicyCompiler
{
    public const int MaxCredentials = 256;

    /// <summary>The record's <c>credential</c> field (AuditRecord's limit): a name is never cut.</summary>
    public const int MaxCredentialNameBytes = 64;

    /// <summary>A secret file larger than this is not a secret but a mistake (a certificate bundle, a log).</summary>
    public const int MaxSecretBytes = 64 * 1024;

    /// <summary>Placeholders shorter than this would turn up in ordinary headers and be refused as misdirected.</summary>
    public const int MinPlaceholderLength = 8;

    /// <summary>
    /// Headers whose value frames or routes the request, or authenticates it to the proxy: replacing
    /// them would change what the proxy decided, not what the origin is told.
    /// </summary>
    private static readonly string[] ReservedHeaders =
    [
        "host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer",
        "expect", "proxy-authorization", "proxy-connection", "proxy-authenticate",
    ];

    /// <summary>
    /// Stage 7, after the agents: <c>credentials</c> checked and compiled, each secret read from its file
    /// or variable (so a reload reads it again). A credential's domains must be inspected by a policy
    /// of each agent it lists: injection happens only inside inspected TLS, so a credential that could
    /// never be injected is a mistake to report now, not a silent no-op. Problems here name the JSON
    /// path like stage 1's; no message ever holds the secret.
    /// </summary>
    private static (CompiledCredential[] Credentials, DomainAutomaton Automaton, CompiledCredential[]?[] ByPattern) Credentials(
        List<CredentialEntry>? entries, bool inspectionConfigured, AgentPlan[] agents, string[] patterns, ulong[] inspectMask, int words, string file)
    {
        var list = entries ?? [];
        if (list.Count == 0)
        {
            return ([], DomainAutomaton.Build([]), []);
        }

        if (!inspectionConfigured)
        {
            throw new PolicyProblem("$.credentials", NeedsInspection);
        }

        if (list.Count > MaxCredentials)
        {
            throw new PolicyProblem("$.credentials", $"{list.Count} credentials; at most {MaxCredentials}");
        }

        var byId = new Dictionary<string, AgentPlan>(StringComparer.Ordinal);
        foreach (var a in agents)
        {
            byId[a.Id] = a;
        }

        var names = new HashSet<string>(StringComparer.Ordinal);
        var compiled = new CompiledCredential[list.Count];
        for (var i = 0; i < list.Count; i++)
        {
            compiled[i] = Credential(list[i], i, $"$.credentials[{i}]", names, byId, agents.Length, patterns, inspectMask, words, file);
        }

        Distinct(compiled);
        var domainPatterns = new List<string>();
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        var byPattern = new List<CompiledCredential>();
        var owners = new List<List<CompiledCredential>>();
        foreach (var c in compiled)
        {
            foreach (var d in c.Domains)
            {
                if (!ids.TryGetValue(d, out var id))
                {
                    id = ids[d] = domainPatterns.Count;
                    domainPatterns.Add(d);
                    owners.Add([]);
                }

                owners[id].Add(c);
            }
        }

        var automaton = DomainAutomaton.Build(domainPatterns);
        if (automaton.MaxMatches > MaxMatchesPerHost)
        {
            throw new PolicyProblem("$.credentials", $"one host name can match {automaton.MaxMatches} credential domains; at most {MaxMatchesPerHost}");
        }

        foreach (var a in agents)
        {
            a.CredentialBuckets = Array.ConvertAll(compiled, c => c.Limits is null || !c.AgentSlots[a.Slot]
                ? null
                : a.Runtime.CredentialBuckets.GetOrAdd(c.Name, static _ => new BucketState()));
        }

        return (compiled, automaton, owners.ConvertAll(o => o.ToArray()).ToArray());
    }

    private static CompiledCredential Credential(CredentialEntry e, int index, string at, HashSet<string> names, Dictionary<string, AgentPlan> byId, int agentCount, string[] patterns, ulong[] inspectMask, int words, string file)
    {
        if (string.IsNullOrWhiteSpace(e.Name))
        {
            throw new PolicyProblem($"{at}.name", "is required");
        }

        if (!names.Add(e.Name))
        {
            throw new PolicyProblem($"{at}.name", $"duplicate credential name \"{e.Name}\"");
        }

        if (e.Name.AsSpan().IndexOfAnyInRange('\0', '\u001f') >= 0)
        {
            throw new PolicyProblem($"{at}.name", "must not contain control characters");
        }

        if (Encoding.UTF8.GetByteCount(e.Name) > MaxCredentialNameBytes)
        {
            throw new PolicyProblem($"{at}.name", $"is longer than {MaxCredentialNameBytes} bytes (records carry it whole)");
        }

        var domains = CredentialDomains(e.Domains, $"{at}.domains");
        var agentIds = e.Agents ?? [];
        if (agentIds.Count == 0)
        {
            throw new PolicyProblem($"{at}.agents", "is required: the agents that may use the credential");
        }

        var slots = new bool[agentCount];
        for (var a = 0; a < agentIds.Count; a++)
        {
            if (!byId.TryGetValue(agentIds[a], out var agent))
            {
                throw new PolicyProblem($"{at}.agents[{a}]", $"unknown agent \"{agentIds[a]}\"");
            }

            slots[agent.Slot] = true;
            for (var d = 0; d < domains.Length; d++)
            {
                if (!Inspected(domains[d], agent, patterns, inspectMask, words))
                {
                    throw new PolicyProblem($"{at}.domains[{d}]", $"\"{domains[d]}\" is not inspected by any policy of agent \"{agent.Id}\" (a credential is injected only inside inspected TLS: add it to an inspect list of the agent's policies)");
                }
            }
        }

        var header = e.Header ?? throw new PolicyProblem($"{at}.header", "is required (the header whose value is replaced, e.g. Authorization)");
        if (header.Length is 0 or > 64 || header.AsSpan().IndexOfAnyExcept(HeaderNameChars) >= 0)
        {
            throw new PolicyProblem($"{at}.header", $"\"{header}\" is not an HTTP header name");
        }

        if (Array.IndexOf(ReservedHeaders, header.ToLowerInvariant()) >= 0)
        {
            throw new PolicyProblem($"{at}.header", $"\"{header}\" frames or routes the request and cannot carry a credential");
        }

        var value = e.Value ?? throw new PolicyProblem($"{at}.value", "is required, e.g. \"Bearer {secret}\"");
        if (!value.Contains("{secret}", StringComparison.Ordinal))
        {
            throw new PolicyProblem($"{at}.value", "must contain {secret}, where the secret goes");
        }

        if (value.AsSpan().IndexOfAnyExcept(ValueChars) >= 0)
        {
            throw new PolicyProblem($"{at}.value", "must be printable ASCII (a header value)");
        }

        var placeholder = e.Placeholder ?? throw new PolicyProblem($"{at}.placeholder", "is required: what the agent sends instead of the secret");
        if (placeholder.Length is < MinPlaceholderLength or > 256 || placeholder.AsSpan().IndexOfAnyExcept(PlaceholderChars) >= 0)
        {
            throw new PolicyProblem($"{at}.placeholder", $"must be {MinPlaceholderLength} to 256 printable ASCII characters without spaces (a shorter one would turn up in ordinary requests)");
        }

        var (secret, source) = ReadSecret(e, at, file);
        return new CompiledCredential
        {
            Name = e.Name,
            Index = index,
            HeaderName = Encoding.ASCII.GetBytes(header),
            Header = header,
            HeaderValue = Encoding.ASCII.GetBytes(value.Replace("{secret}", secret, StringComparison.Ordinal)),
            Placeholder = Encoding.ASCII.GetBytes(placeholder),
            AgentSlots = slots,
            Agents = [.. agentIds.Distinct(StringComparer.Ordinal)],
            Domains = domains,
            Require = e.Require,
            Window = e.TimeRestrictions is { } t ? CompileWindow(t, $"{at}.timeRestrictions") : null,
            Limits = ValidateLimits(e.RateLimits, $"{at}.rateLimits"),
            Source = source,
        };
    }

    /// <summary>Exact names or <c>*.suffix</c>, normalized like every domain pattern; no ports (the credential follows the inspected tunnel's).</summary>
    private static string[] CredentialDomains(List<string>? raw, string at)
    {
        if (raw is not { Count: > 0 })
        {
            throw new PolicyProblem(at, "is required: the hosts the credential may be sent to");
        }

        if (raw.Count > MaxDomainsPerList)
        {
            throw new PolicyProblem(at, $"{raw.Count} domains; at most {MaxDomainsPerList}");
        }

        var domains = new List<string>(raw.Count);
        for (var i = 0; i < raw.Count; i++)
        {
            if (raw[i].Contains(':', StringComparison.Ordinal))
            {
                throw new PolicyProblem($"{at}[{i}]", $"\"{raw[i]}\": a credential's domain takes no port (it goes wherever the inspected tunnel to that host goes)");
            }

            if (DomainNames.TryNormalizePattern(raw[i], out var pattern) is { } error)
            {
                throw new PolicyProblem($"{at}[{i}]", $"\"{raw[i]}\": {error}");
            }

            if (!domains.Contains(pattern))
            {
                domains.Add(pattern);
            }
        }

        return [.. domains];
    }

    /// <summary>Every host <paramref name="domain"/> matches is matched by an inspect pattern of the agent's policies (on some port).</summary>
    private static bool Inspected(string domain, AgentPlan agent, string[] patterns, ulong[] inspectMask, int words)
    {
        if (inspectMask.Length == 0)
        {
            return false;
        }

        for (var m = 0; m < patterns.Length; m++)
        {
            var row = inspectMask.AsSpan(m * words, words);
            var mine = false;
            for (var w = 0; w < words && !mine; w++)
            {
                mine = (row[w] & agent.PolicyMask[w]) != 0;
            }

            DomainNames.SplitPorts(patterns[m], out var name, out _, out _);
            if (mine && Covers(name, domain))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Every host <paramref name="inner"/> matches, <paramref name="outer"/> matches too (both normalized patterns without ports).</summary>
    private static bool Covers(string outer, string inner)
    {
        if (!outer.StartsWith("*.", StringComparison.Ordinal))
        {
            return string.Equals(outer, inner, StringComparison.Ordinal);
        }

        var suffix = outer[1..]; // ".example.org"
        var name = inner.StartsWith("*.", StringComparison.Ordinal) ? inner[1..] : inner;
        return name.EndsWith(suffix, StringComparison.Ordinal) && (inner.StartsWith("*.", StringComparison.Ordinal) || name.Length > suffix.Length);
    }

    /// <summary>Some host matches both patterns.</summary>
    private static bool Overlap(string a, string b) => Covers(a, b) || Covers(b, a);

    /// <summary>
    /// One request carries at most one credential: no two may serve one agent on one host, and no
    /// placeholder may hold another (a request carrying the longer one would also carry the shorter).
    /// </summary>
    private static void Distinct(CompiledCredential[] credentials)
    {
        for (var j = 1; j < credentials.Length; j++)
        {
            var c = credentials[j];
            for (var i = 0; i < j; i++)
            {
                var o = credentials[i];
                if (c.Placeholder.AsSpan().IndexOf(o.Placeholder) >= 0 || o.Placeholder.AsSpan().IndexOf(c.Placeholder) >= 0)
                {
                    throw new PolicyProblem($"$.credentials[{j}].placeholder", $"overlaps the placeholder of credential \"{o.Name}\" (one must not contain the other)");
                }

                var shared = Array.Find(c.Agents, a => Array.IndexOf(o.Agents, a) >= 0);
                if (shared is null)
                {
                    continue;
                }

                for (var d = 0; d < c.Domains.Length; d++)
                {
                    if (Array.Find(o.Domains, x => Overlap(x, c.Domains[d])) is { } other)
                    {
                        throw new PolicyProblem($"$.credentials[{j}].domains[{d}]", $"\"{c.Domains[d]}\" overlaps \"{other}\" of credential \"{o.Name}\" for agent \"{shared}\" (one request carries one credential)");
                    }
                }
            }
        }
    }

    /// <summary>
    /// The secret from <c>secretFile</c> (relative to the policy file's directory) or <c>secretEnv</c>,
    /// trailing line breaks trimmed. Messages name the file or variable, never the content.
    /// </summary>
    private static (string Secret, string Source) ReadSecret(CredentialEntry e, string at, string policyFile)
    {
        if ((e.SecretFile is null) == (e.SecretEnv is null))
        {
            throw new PolicyProblem(at, "needs exactly one of secretFile and secretEnv");
        }

        string secret;
        string source;
        string where;
        if (e.SecretFile is { } fileName)
        {
            where = $"{at}.secretFile";
            if (fileName.Length == 0)
            {
                throw new PolicyProblem(where, "must not be empty");
            }

            var path = Path.IsPathRooted(fileName) ? fileName : Path.Combine(Path.GetDirectoryName(Path.GetFullPath(policyFile)) ?? ".", fileName);
            source = path;
            try
            {
                using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1);
                var buffer = new byte[MaxSecretBytes + 1];
                var total = 0;
                int n;
                while (total < buffer.Length && (n = stream.Read(buffer, total, buffer.Length - total)) > 0)
                {
                    total += n;
                }

                if (total > MaxSecretBytes)
                {
                    throw new PolicyProblem(where, $"{path}: larger than {MaxSecretBytes} bytes; a secret file holds the secret alone");
                }

                if (Array.IndexOf(buffer, (byte)0, 0, total) >= 0 || !Ascii.IsValid(buffer.AsSpan(0, total)))
                {
                    throw new PolicyProblem(where, $"{path}: the secret must be printable ASCII");
                }

                secret = Encoding.ASCII.GetString(buffer, 0, total);
                Array.Clear(buffer);
            }
            catch (Exception ex) when (IoErrors.IsIo(ex))
            {
                throw new PolicyProblem(where, $"cannot read {path}: {IoErrors.Problem(ex, path)}");
            }
        }
        else
        {
            where = $"{at}.secretEnv";
            var name = e.SecretEnv!;
            if (name.Length == 0 || name.Contains('=', StringComparison.Ordinal))
            {
                throw new PolicyProblem(where, "must name an environment variable");
            }

            source = "env:" + name;
            secret = Environment.GetEnvironmentVariable(name) ?? throw new PolicyProblem(where, $"the environment variable {name} is not set");
        }

        secret = secret.TrimEnd('\r', '\n');
        if (secret.Length == 0)
        {
            throw new PolicyProblem(where, $"{(e.SecretFile is null ? "the environment variable " + e.SecretEnv : source)} holds an empty secret");
        }

        if (secret.AsSpan().IndexOfAnyExcept(ValueChars) >= 0)
        {
            // Never say where or what: the position would narrow the secret down.
            throw new PolicyProblem(where, $"the secret in {(e.SecretFile is null ? "the environment variable " + e.SecretEnv : source)} holds a line break or another character a header value cannot carry");
        }

        return (secret, e.SecretFile is null ? source : "file:" + source);
    }

    /// <summary>RFC 9110 tchar: what a header name may hold.</summary>
    private static readonly System.Buffers.SearchValues<char> HeaderNameChars =
        System.Buffers.SearchValues.Create("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");

    /// <summary>Printable ASCII, space and tab: a header value that cannot end the line or the head.</summary>
    private static readonly System.Buffers.SearchValues<char> ValueChars =
        System.Buffers.SearchValues.Create(" \t!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~");

    /// <summary>Printable ASCII without space: a placeholder is one token.</summary>
    private static readonly System.Buffers.SearchValues<char> PlaceholderChars =
        System.Buffers.SearchValues.Create("!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~");
}
