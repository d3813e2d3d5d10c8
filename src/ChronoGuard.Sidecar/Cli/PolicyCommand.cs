using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using ChronoGuard.Http;
using ChronoGuard.Policy;
using ChronoGuard.Proxy;

namespace ChronoGuard.Sidecar.Cli;

/// <summary><c>chronoguard policy check|explain</c>; <c>suggest</c> is <see cref="PolicySuggestCommand"/>.</summary>
internal static class PolicyCommand
{
    private static readonly string[] ExplainOptions = ["--agent", "--target", "--method", "--path", "--at", "--resolve", "--resolver"];

    /// <summary>How long <c>--resolve</c> waits for an answer: the proxy's own default (Proxy:ConnectTimeoutMs).</summary>
    private static readonly TimeSpan ResolveTimeout = TimeSpan.FromMilliseconds(new ProxyOptions().ConnectTimeoutMs);

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Length > 0 && args[0] == "suggest")
        {
            return PolicySuggestCommand.Run(args[1..], stdout, stderr);
        }

        if (args.Length < 2 || args[0] is not ("check" or "explain") || args[1].StartsWith('-'))
        {
            stderr.WriteLine(args.Length > 0 && args[0] == "check"
                ? "policy check: usage: chronoguard policy check FILE"
                : "policy: usage: policy check FILE | policy explain FILE --target HOST:PORT [--agent A] [--method M] [--path P] [--at ISO-8601] [--resolve | --resolver IP:PORT] | policy suggest --audit-dir DIR [--since T] [--agent A]");
            return CommandLine.UsageError;
        }

        if (args[0] == "check" && args.Length > 2)
        {
            stderr.WriteLine($"policy check: unexpected argument '{args[2]}' (check takes one FILE)");
            return CommandLine.UsageError;
        }

        var file = args[1];
        if (!File.Exists(file))
        {
            stderr.WriteLine($"{file}: {(Directory.Exists(file) ? "is a directory, not a file" : "file not found")}");
            return CommandLine.UsageError;
        }

        CompiledPolicy policy;
        var watch = Stopwatch.StartNew();
        string sha;
        try
        {
            // The file is judged on its own: whether the sidecar that will load it has Inspection
            // configured is its configuration's business (check says what run will need).
            policy = PolicyLoader.Load(file, new AgentRegistry(), int.MaxValue, out sha, inspectionConfigured: true, approvalsConfigured: true);
        }
        catch (PolicyLoadException ex)
        {
            stderr.WriteLine(ex.Message);
            return CommandLine.CheckFailed;
        }

        if (args[0] == "check")
        {
            stdout.WriteLine($"valid: {file}: {policy.Agents.Length} agents, {policy.DeclaredPolicies.Length} policies, {policy.Patterns.Length} domain patterns ({Array.FindAll(policy.PortScoped, p => p).Length} with a port), mode {(policy.IsObserve ? "observe" : "enforce")}, sha256 {sha} (compiled in {watch.Elapsed.TotalMilliseconds:F1} ms)");
            CheckPresets(policy, stdout);
            CheckInspection(policy, stdout);
            return CommandLine.Ok;
        }

        return Explain(policy, args[2..], stdout, stderr);
    }

    private static int Explain(CompiledPolicy policy, string[] args, TextWriter stdout, TextWriter stderr)
    {
        string? agentId = null, target = null, method = null, path = null, at = null;
        IDnsResolver? resolver = null;
        var resolverName = "the system resolver";
        for (var i = 0; i < args.Length; i++)
        {
            if (Array.IndexOf(ExplainOptions, args[i]) < 0)
            {
                stderr.WriteLine("policy explain: " + CommandLine.Unrecognised(args[i], ExplainOptions));
                return CommandLine.UsageError;
            }

            if (args[i] == "--resolve")
            {
                // The resolver run uses (getaddrinfo): on the sidecar's host, the answers the proxy gets.
                resolver ??= SystemDnsResolver.Instance;
                continue;
            }

            if (i + 1 >= args.Length)
            {
                stderr.WriteLine($"policy explain: {args[i]} needs a value");
                return CommandLine.UsageError;
            }

            switch (args[i])
            {
                case "--agent": agentId = args[++i]; break;
                case "--target": target = args[++i]; break;
                case "--method": method = args[++i]; break;
                case "--path": path = args[++i]; break;
                case "--at": at = args[++i]; break;
                case "--resolver":
                    if (!IPEndPoint.TryParse(args[++i], out var server) || server.Address.Equals(IPAddress.Any) || server.Address.Equals(IPAddress.IPv6Any))
                    {
                        stderr.WriteLine($"policy explain: --resolver '{args[i]}' is not an IP:PORT (a DNS server's address, e.g. 10.96.0.10:53)");
                        return CommandLine.UsageError;
                    }

                    server.Port = server.Port == 0 ? 53 : server.Port;
                    resolver = new DnsServerResolver(server);
                    resolverName = $"the DNS server {server}";
                    break;
                default:
                    stderr.WriteLine($"policy explain: unknown option '{args[i]}'");
                    return CommandLine.UsageError;
            }
        }

        if (agentId is null && policy.Agents.Length == 1)
        {
            agentId = policy.Agents[0].Id;
        }

        if (agentId is null || target is null)
        {
            stderr.WriteLine(target is null ? "policy explain: --target is required" : $"policy explain: --agent is required (the policy has {policy.Agents.Length} agents)");
            return CommandLine.UsageError;
        }

        var now = DateTimeOffset.UtcNow;
        if (at is not null && !DateTimeOffset.TryParse(at, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out now))
        {
            stderr.WriteLine($"policy explain: --at '{at}' is not an ISO-8601 time");
            return CommandLine.UsageError;
        }

        var trace = new ConsoleTrace(stdout);
        trace.Step($"at {now.UtcDateTime:yyyy-MM-dd'T'HH:mm:ss'Z'}, target {target}, method {method ?? "CONNECT"}{(path is null ? string.Empty : ", path " + path)}");

        // The proxy's own parser judges the target and path first, so explain refuses what it refuses.
        var targetBytes = Encoding.ASCII.GetBytes(target);
        if (target.Any(c => c > 0x7F) || !HttpHeadParser.TryParseAuthority(targetBytes, 0, portRequired: true, defaultPort: 0, out var hostSeg, out var port))
        {
            return Refused(trace, stdout, $"target: '{target}' is not a valid HOST:PORT (a DNS name or IP literal)", ParseError.BadTarget);
        }

        byte[]? pathBytes = null, withoutParameters = null;
        if (path is not null)
        {
            var raw = Encoding.ASCII.GetBytes(path.Split('?')[0] is { Length: > 0 } p ? p : "/");
            pathBytes = new byte[raw.Length];
            if (path.Any(c => c is <= ' ' or > '~') || raw[0] != (byte)'/'
                || PathNormalizer.Normalize(raw, pathBytes, dropParameters: false, out var written) != ParseError.None)
            {
                return Refused(trace, stdout, $"path: '{path}' cannot be normalised without guessing", ParseError.BadPath);
            }

            pathBytes = pathBytes[..written];
            if (raw.AsSpan().IndexOf((byte)';') >= 0)
            {
                withoutParameters = new byte[raw.Length];
                PathNormalizer.Normalize(raw, withoutParameters, dropParameters: true, out written);
                withoutParameters = withoutParameters[..written];
            }

            trace.Step($"path as rules see it: {Encoding.ASCII.GetString(pathBytes)}{(withoutParameters is null ? string.Empty : $" (without parameters: {Encoding.ASCII.GetString(withoutParameters)})")}");
        }
        if (!policy.AgentsById.TryGetValue(agentId, out var agent))
        {
            trace.Step($"agent {agentId}: unknown -> DENY 407 {Reasons.BadCredentials}");
            stdout.WriteLine($"decision: DENY (407 {Reasons.BadCredentials})");
            return CommandLine.CheckFailed;
        }

        trace.Step($"agent {agent.Id}: {(agent.Suspended ? "suspended" : "active")}, policies in order: {string.Join(", ", agent.Order.Select(p => $"{p.Name} ({p.Priority}, lineage {string.Join(" < ", p.Lineage)})"))}");
        DecisionResult result;
        var addresses = string.Empty;
        var host = targetBytes.AsSpan(hostSeg.Start, hostSeg.Length);
        var inner = method is not (null or "CONNECT") && policy.Inspects(agent, host, port);
        if (agent.Suspended)
        {
            result = DecisionResult.Refuse(Decision.Deny, 403, Reasons.Suspended);
        }
        else if (inner && ExplainTunnel(policy, agent, host, port, now, trace, stdout) is { IsAllow: false } refusedTunnel)
        {
            // The CONNECT itself is refused: no inner request is ever decided.
            result = refusedTunnel;
        }
        else
        {
            var connect = method is null or "CONNECT";
            if (inner)
            {
                trace.Step($"inside the inspected tunnel: {method} {(path is null ? "/" : Encoding.ASCII.GetString(pathBytes!))} decided like a plain-HTTP request");
                pathBytes ??= "/"u8.ToArray();
            }

            var facts = new RequestFacts(targetBytes.AsSpan(hostSeg.Start, hostSeg.Length), port, Encoding.ASCII.GetBytes(method ?? "CONNECT"),
                pathBytes, default, null, connect);
            result = withoutParameters is null
                ? policy.Decide(agent, facts, now, Stopwatch.GetTimestamp(), trace)
                : policy.Decide(agent, facts with { PathWithoutParameters = withoutParameters }, now, Stopwatch.GetTimestamp(), trace);
            foreach (var p in agent.Order)
            {
                if (p.Limits is { } l)
                {
                    trace.Step($"bucket {p.Name}: {l.PerMinute?.ToString(CultureInfo.InvariantCulture) ?? "-"}/min (burst {l.Burst?.ToString(CultureInfo.InvariantCulture) ?? "-"}), {l.PerHour?.ToString(CultureInfo.InvariantCulture) ?? "-"}/h, {l.PerDay?.ToString(CultureInfo.InvariantCulture) ?? "-"}/day, scope {(p.PerDomainBuckets ? "agent_domain" : "agent")}; full in a fresh process");
                }
            }

            if (result.IsAllow && policy.Credentials.Length != 0)
            {
                result = ExplainCredential(policy, agent, facts.Host, port, inner, connect, now, result, trace, stdout);
            }

            // An IP literal was judged by the guard inside the decision; a name only at its resolved addresses.
            var name = Encoding.ASCII.GetString(host);
            if (!CompiledPolicy.TryParseLiteral(facts.Host, out _))
            {
                if (result.IsAllow && resolver is null)
                {
                    trace.Step($"network guard: not judged: explain did not resolve {name}; the proxy refuses the request if no address of it passes the guard (add --resolve to judge them)");
                    addresses = "; addresses not judged (no --resolve)";
                }
                else if (result.IsAllow)
                {
                    if (JudgeAddresses(policy, name, resolver!, resolverName, trace, stderr, ref result, out addresses) is { } failed)
                    {
                        return failed;
                    }
                }
                else if (resolver is not null)
                {
                    trace.Step($"resolve: {name} not resolved: the proxy resolves a name only for a request that could be allowed");
                }
            }
        }

        var retry = result.RetryAt is { } r ? $", retry at {r.UtcDateTime:yyyy-MM-dd'T'HH:mm:ss'Z'}" : result.RetryAfterSeconds >= 0 ? $", retry after {result.RetryAfterSeconds} s" : string.Empty;
        if (ReferenceEquals(result.Reason, Reasons.ApprovalRequired))
        {
            // Not a refusal yet and not an allow: the exit says "not allowed as it stands" (1).
            stdout.WriteLine($"decision: ASK (held for an operator's approval up to Admin:AskTimeoutMs, then {result.Status} {DecisionNames.Name(result.Decision)} approval_timeout; chronoguard approve ID allows it, or a runtime grant for the host){addresses}");
            return CommandLine.CheckFailed;
        }

        stdout.WriteLine($"decision: {DecisionNames.Name(result.Decision)} ({result.Status} {result.Reason}{(result.Policy is null ? string.Empty : ", policy " + result.Policy)}{(result.Rule is null ? string.Empty : ", rule " + result.Rule)}{(result.Credential is null ? string.Empty : ", credential " + result.Credential.Name)}{retry}){addresses}");
        return result.IsAllow && result.Status == 200 ? CommandLine.Ok : CommandLine.CheckFailed;
    }

    /// <summary>
    /// The network guard over every address the name resolves to, as the proxy judges them (SPEC §4):
    /// when some pass, only those are dialed and the decision stands; when none does, the first
    /// refused address's verdict is the decision; a name without an address is the proxy's 502.
    /// Returns an exit code when nothing could be asked (an I/O error), else null.
    /// </summary>
    private static int? JudgeAddresses(CompiledPolicy policy, string name, IDnsResolver resolver, string resolverName, ConsoleTrace trace, TextWriter stderr, ref DecisionResult result, out string note)
    {
        note = string.Empty;
        IPAddress[] resolved;
        using (var deadline = new CancellationTokenSource(ResolveTimeout))
        {
            try
            {
                // One blocking wait in a command-line tool with no synchronization context.
                resolved = resolver.ResolveAsync(name, deadline.Token).AsTask().GetAwaiter().GetResult();
            }
            catch (OperationCanceledException)
            {
                stderr.WriteLine($"policy explain: {resolverName} gave no answer for {name} within {ResolveTimeout.TotalSeconds:F0} s");
                return CommandLine.UsageError;
            }
            catch (SocketException ex)
            {
                stderr.WriteLine($"policy explain: {resolverName} could not be asked about {name}: {ex.Message}");
                return CommandLine.UsageError;
            }
        }

        if (resolved.Length == 0)
        {
            trace.Step($"resolve: {name} has no address ({resolverName}): the proxy answers 502 {ProxyReasons.UpstreamUnresolved}");
            result.Status = 502;
            result.Reason = ProxyReasons.UpstreamUnresolved;
            return null;
        }

        trace.Step($"resolve: {name} -> {string.Join(", ", (IEnumerable<IPAddress>)resolved)} ({resolverName})");
        var passed = new List<IPAddress>();
        var refused = new List<IPAddress>();
        DecisionResult? firstRefusal = null;
        foreach (var address in resolved)
        {
            var judged = policy.CheckResolved(address, trace);
            if (judged.IsAllow)
            {
                passed.Add(address);
            }
            else
            {
                refused.Add(address);
                firstRefusal ??= judged;
            }
        }

        if (passed.Count > 0)
        {
            trace.Step(refused.Count == 0
                ? $"network guard: every address passes; the proxy dials {passed[0]} first"
                : $"network guard: {passed.Count} of {resolved.Length} addresses pass; the proxy dials only those ({passed[0]} first), never {string.Join(", ", refused)}");
            note = $"; dials {string.Join(", ", passed)}";
            return null;
        }

        trace.Step($"network guard: no address of {name} passes: the request is refused, and its record names {refused[0]}");
        result = firstRefusal!.Value;
        note = $"; address {refused[0]}";
        return null;
    }

    /// <summary>The CONNECT that carries an inspected request: its own decision, traced, and one line saying so.</summary>
    private static DecisionResult ExplainTunnel(CompiledPolicy policy, AgentPlan agent, ReadOnlySpan<byte> host, int port, DateTimeOffset now, ConsoleTrace trace, TextWriter stdout)
    {
        trace.Step("the tunnel first (an HTTPS client sends CONNECT, whatever its method):");
        var tunnel = policy.Decide(agent, new RequestFacts(host, port, "CONNECT"u8, default, default, null, isConnect: true), now, Stopwatch.GetTimestamp(), trace);
        stdout.WriteLine($"tunnel: {DecisionNames.Name(tunnel.Decision)} ({tunnel.Status} {tunnel.Reason}){(tunnel.Inspect ? ", inspected: TLS is terminated and each request inside is decided on its own" : string.Empty)}");
        return tunnel;
    }

    /// <summary>
    /// SPEC §7's steps after ALLOW, for a request that carries the placeholder of the credential bound to
    /// this agent and host (explain has no headers): which credential would be injected, or why not.
    /// Names only: never the secret.
    /// </summary>
    private static DecisionResult ExplainCredential(CompiledPolicy policy, AgentPlan agent, ReadOnlySpan<byte> host, int port, bool inner, bool connect, DateTimeOffset now, DecisionResult allowed, ConsoleTrace trace, TextWriter stdout)
    {
        if (connect)
        {
            return allowed;
        }

        if (policy.BoundCredential(agent, host, port) is not { } credential)
        {
            trace.Step("credentials: none is bound to this agent and host");
            return allowed;
        }

        if (!inner)
        {
            trace.Step($"credential {credential.Name}: bound to this host, but this request is plain HTTP, not inside inspected TLS: it is never injected here, and its placeholder would be refused ({Reasons.CredentialMisdirected})");
            var plain = policy.ApplyCredentials(agent, host, port, default, inspected: false, tunnel: false, now, Stopwatch.GetTimestamp(), allowed, consume: false, trace);
            return plain;
        }

        trace.Step($"credential {credential.Name}: bound to agent {agent.Id} on this host; assuming the request carries its placeholder {Encoding.ASCII.GetString(credential.Placeholder)}{(credential.Require ? " (required: without it the request is refused " + Reasons.CredentialRequired + ")" : string.Empty)}");
        var result = policy.ApplyCredentials(agent, host, port, credential.Placeholder, inspected: true, tunnel: false, now, Stopwatch.GetTimestamp(), allowed, consume: false, trace);
        if (result.IsAllow && result.Credential is { } injected)
        {
            stdout.WriteLine($"credential: {injected.Name} would be injected ({injected.Header} replaced; secret from {injected.Source})");
        }

        return result;
    }

    /// <summary>
    /// The presets each policy names, with their versions: the file's SHA-256 does not cover the
    /// built-in lists, so a reviewer needs to see which list a release holds.
    /// </summary>
    private static void CheckPresets(CompiledPolicy policy, TextWriter stdout)
    {
        var named = new SortedDictionary<int, SortedSet<string>>();
        foreach (var sources in policy.PresetsByPattern)
        {
            foreach (var (declared, preset) in sources ?? [])
            {
                (named.TryGetValue(declared, out var set) ? set : named[declared] = new SortedSet<string>(StringComparer.Ordinal)).Add(preset);
            }
        }

        foreach (var (declared, presets) in named)
        {
            stdout.WriteLine($"presets: policy {policy.DeclaredPolicies[declared]}: {string.Join(", ", presets.Select(p => PolicyPresets.TryGet(p, out var preset) ? $"{p} v{preset.Version} ({preset.Domains.Length} {(preset.Domains.Length == 1 ? "pattern" : "patterns")})" : p))}");
        }
    }

    /// <summary>What <c>check</c> adds for SPEC §7: what is inspected, each credential by name, and what does not add up.</summary>
    private static void CheckInspection(CompiledPolicy policy, TextWriter stdout)
    {
        if (!policy.AnyInspect && policy.Credentials.Length == 0)
        {
            return;
        }

        foreach (var p in policy.Policies)
        {
            var inspected = policy.MergedInspect(p);
            if (inspected.Length > 0)
            {
                stdout.WriteLine($"inspect: policy {p.Name}: {string.Join(", ", inspected)}");
            }
        }

        foreach (var c in policy.Credentials)
        {
            var limits = c.Limits is { } l ? $"; at most {l.PerMinute?.ToString(CultureInfo.InvariantCulture) ?? "-"}/min, {l.PerHour?.ToString(CultureInfo.InvariantCulture) ?? "-"}/h, {l.PerDay?.ToString(CultureInfo.InvariantCulture) ?? "-"}/day per agent" : string.Empty;
            stdout.WriteLine($"credential {c.Name}: agents {string.Join(", ", c.Agents)}; domains {string.Join(", ", c.Domains)}; header {c.Header}; secret from {c.Source}{(c.Require ? "; required" : string.Empty)}{(c.Window is null ? string.Empty : "; time window " + c.Window.Zone.Id)}{limits}");
        }

        // An inspect pattern that no agent may reach is never used: the tunnel must be allowed first.
        var probeTime = DateTimeOffset.UtcNow;
        foreach (var p in policy.Policies)
        {
            foreach (var pattern in policy.MergedInspect(p))
            {
                DomainNames.SplitPorts(pattern, out var name, out var lo, out _);
                if (name.StartsWith("*.", StringComparison.Ordinal))
                {
                    continue;
                }

                var port = lo is > 0 and <= 65535 ? lo : 443;
                var host = Encoding.ASCII.GetBytes(name);
                var reached = policy.Agents.Any(a => Array.IndexOf(a.Order, p) >= 0
                    && policy.Decide(a, new RequestFacts(host, port, "CONNECT"u8, default, default, null, isConnect: true), probeTime, Stopwatch.GetTimestamp()) is { IsAllow: true } or { Decision: Decision.TimeRestricted or Decision.RateLimited });
                if (!reached)
                {
                    stdout.WriteLine($"warning: inspect {pattern} (policy {p.Name}): no agent of the policy is allowed a tunnel to {name}:{port}, so nothing is inspected there");
                }
            }
        }

        stdout.WriteLine("note: run needs Inspection:CaCertFile and Inspection:CaKeyFile for inspect and credentials (chronoguard ca init makes them); without them it refuses this policy");
    }

    /// <summary>What the proxy answers a request its parser refuses: 400, before any policy step.</summary>
    private static int Refused(ConsoleTrace trace, TextWriter stdout, string step, ParseError error)
    {
        trace.Step(step);
        stdout.WriteLine($"decision: DENY ({ParseErrors.StatusCode(error)} {ParseErrors.Reason(error)})");
        return CommandLine.CheckFailed;
    }

    private sealed class ConsoleTrace(TextWriter output) : IDecisionTrace
    {
        private int _step;

        public void Step(string text) => output.WriteLine($"{++_step,3}. {text}");
    }
}
