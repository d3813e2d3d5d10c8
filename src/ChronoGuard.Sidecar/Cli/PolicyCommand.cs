using System.Diagnostics;
using System.Globalization;
using System.Text;
using ChronoGuard.Http;
using ChronoGuard.Policy;

namespace ChronoGuard.Sidecar.Cli;

/// <summary><c>chronoguard policy check|explain</c>.</summary>
internal static class PolicyCommand
{
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Length < 2 || args[0] is not ("check" or "explain"))
        {
            stderr.WriteLine("policy: usage: policy check FILE | policy explain FILE --agent A --target HOST:PORT [--method M] [--path P] [--at ISO-8601]");
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
            policy = PolicyLoader.Load(file, new AgentRegistry(), int.MaxValue, out sha);
        }
        catch (PolicyLoadException ex)
        {
            stderr.WriteLine(ex.Message);
            return CommandLine.CheckFailed;
        }

        if (args[0] == "check")
        {
            stdout.WriteLine($"valid: {file}: {policy.Agents.Length} agents, {policy.DeclaredPolicies.Length} policies, {policy.Patterns.Length} domain patterns ({Array.FindAll(policy.PortScoped, p => p).Length} with a port), mode {(policy.IsObserve ? "observe" : "enforce")}, sha256 {sha} (compiled in {watch.Elapsed.TotalMilliseconds:F1} ms)");
            return CommandLine.Ok;
        }

        return Explain(policy, args[2..], stdout, stderr);
    }

    private static int Explain(CompiledPolicy policy, string[] args, TextWriter stdout, TextWriter stderr)
    {
        string? agentId = null, target = null, method = null, path = null, at = null;
        for (var i = 0; i < args.Length; i++)
        {
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
                default:
                    stderr.WriteLine($"policy explain: unknown option '{args[i]}'");
                    return CommandLine.UsageError;
            }
        }

        if (agentId is null || target is null)
        {
            stderr.WriteLine("policy explain: --agent and --target are required");
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
        if (agent.Suspended)
        {
            result = DecisionResult.Refuse(Decision.Deny, 403, Reasons.Suspended);
        }
        else
        {
            var connect = method is null or "CONNECT";
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

            if (result.IsAllow && !CompiledPolicy.TryParseLiteral(facts.Host, out _))
            {
                trace.Step("network guard: the resolved address is checked when the proxy dials (explain does not resolve names)");
            }
        }

        var retry = result.RetryAt is { } r ? $", retry at {r.UtcDateTime:yyyy-MM-dd'T'HH:mm:ss'Z'}" : result.RetryAfterSeconds >= 0 ? $", retry after {result.RetryAfterSeconds} s" : string.Empty;
        stdout.WriteLine($"decision: {DecisionNames.Name(result.Decision)} ({result.Status} {result.Reason}{(result.Policy is null ? string.Empty : ", policy " + result.Policy)}{(result.Rule is null ? string.Empty : ", rule " + result.Rule)}{retry})");
        return result.IsAllow ? CommandLine.Ok : CommandLine.CheckFailed;
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
