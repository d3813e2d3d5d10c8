using System.Text.Json;

namespace ChronoGuard.Sidecar.Cli;

/// <summary>
/// <c>chronoguard grant add|list|revoke</c>: runtime grants on a running sidecar (SPEC §9, <c>/v1/grants</c>).
/// A grant lifts only what <c>defaultAction</c> would refuse, for one agent and a time.
/// </summary>
internal static class GrantCommand
{
    private const string Connection = """
          --admin URL        the admin API (default $CHRONOGUARD_ADMIN)
          --token-file F     a file holding an admin bearer token (default $CHRONOGUARD_ADMIN_TOKEN_FILE);
                             the token's name in Admin:TokenSha256 is recorded as the actor

        Exit 0 done, 1 refused (the sidecar's reason on stderr) or unreachable, 2 usage or the token file cannot be read.
        """;

    public const string Group = """
        usage: chronoguard grant add|list|revoke ...

          grant add     --agent A --domain D [--domain D]... (--for 1h | --expires T) --reason R
                                    let agent A reach D until then, where the policy's defaultAction would refuse it
          grant list    [--agent A] [--json]
                                    the grants in force
          grant revoke  ID [--reason R]
                                    end a grant now

        Each change is a chained record in the audit log naming who made it and why, and is kept across
        restarts in grants.json beside the audit log. chronoguard grant COMMAND --help shows the options of one.
        """;

    public const string AddUsage = """
        usage: chronoguard grant add --agent A --domain D [--domain D]... (--for 1h | --expires T) --reason R
                                     [--admin http://HOST:PORT] [--token-file F]

        Lets agent A reach the domains (exact, or *.example.com for the names below it) until the grant
        expires, in force at once. It lifts only a defaultAction refusal: a blocked domain, a rule, the
        network guard and the budgets still refuse. Prints the grant's id.

          --agent A          an agent of the policy file
          --domain D         a domain name or *.suffix; repeat it, or give a comma list
          --for DURATION     90s, 10m, 1h, 7d from now
          --expires T        or an ISO-8601 time
          --reason R         why (a ticket, an incident): recorded with the grant
        """ + "\n" + Connection;

    public const string ListUsage = """
        usage: chronoguard grant list [--agent A] [--json] [--admin http://HOST:PORT] [--token-file F]

        The runtime grants in force: id, agent, domains, expiry, who made it and why.

          --agent A          one agent's only
          --json             the API's JSON answer as it came
        """ + "\n" + Connection;

    public const string RevokeUsage = """
        usage: chronoguard grant revoke ID [--reason R] [--admin http://HOST:PORT] [--token-file F]

        Ends the grant ID (from grant list) now; tunnels it let through are closed.

          --reason R         why: recorded with the revocation
        """ + "\n" + Connection;

    private static readonly string[] Header = ["ID", "AGENT", "DOMAINS", "EXPIRES", "BY", "REASON"];

    public static async Task<int> RunAsync(string sub, string[] argv, TextWriter stdout, TextWriter stderr)
    {
        var command = "grant " + sub;
        var args = argv.ToList();
        if (AdminClient.TakeOptions(args, out var admin, out var tokenFile) is { } optionError)
        {
            return await AdminClient.FailAsync(stderr, command, optionError, CommandLine.UsageError).ConfigureAwait(false);
        }

        string[] options = sub switch
        {
            "add" => ["--agent", "--domain", "--for", "--expires", "--reason", "--admin", "--token-file"],
            "list" => ["--agent", "--json", "--admin", "--token-file"],
            _ => ["--reason", "--admin", "--token-file"],
        };
        string? agent = null, forText = null, expires = null, reason = null, id = null;
        var domains = new List<string>();
        var json = false;
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (arg is "--agent" or "--domain" or "--for" or "--expires" or "--reason" && Array.IndexOf(options, arg) >= 0)
            {
                if (i + 1 >= args.Count)
                {
                    return await AdminClient.FailAsync(stderr, command, $"{arg} needs a value", CommandLine.UsageError).ConfigureAwait(false);
                }

                var value = args[++i];
                switch (arg)
                {
                    case "--agent": agent = value; break;
                    case "--domain": domains.AddRange(value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)); break;
                    case "--for": forText = value; break;
                    case "--expires": expires = value; break;
                    default: reason = value; break;
                }
            }
            else if (arg == "--json" && sub == "list")
            {
                json = true;
            }
            else if (sub == "revoke" && id is null && !arg.StartsWith('-'))
            {
                id = arg;
            }
            else
            {
                var problem = CommandLine.Unrecognised(arg, options);
                return await AdminClient.FailAsync(stderr, command, sub == "revoke" && !arg.StartsWith('-') ? problem + " (revoke takes one ID)" : problem, CommandLine.UsageError).ConfigureAwait(false);
            }
        }

        var usage = sub switch { "add" => AddUsage, "list" => ListUsage, _ => RevokeUsage };
        var missing = sub switch
        {
            "add" when agent is null => "--agent is required",
            "add" when domains.Count == 0 => "--domain is required",
            "add" when (forText is null) == (expires is null) => "give exactly one of --for and --expires",
            "add" when reason is null => "--reason is required (a ticket, an incident: it is recorded with the grant)",
            "revoke" when id is null => "the grant's ID is required (see chronoguard grant list)",
            _ => null,
        };
        if (missing is not null)
        {
            return await AdminClient.FailAsync(stderr, command, $"{missing} ({usage.Split('\n')[0]})", CommandLine.UsageError).ConfigureAwait(false);
        }

        var (client, error) = AdminClient.Create(admin, tokenFile);
        if (client is null)
        {
            return await AdminClient.FailAsync(stderr, command, error!, CommandLine.UsageError).ConfigureAwait(false);
        }

        switch (sub)
        {
            case "add":
            {
                var body = AdminClient.Json(w =>
                {
                    w.WriteStartObject();
                    w.WriteString("agent", agent);
                    w.WriteStartArray("domains");
                    foreach (var d in domains)
                    {
                        w.WriteStringValue(d);
                    }

                    w.WriteEndArray();
                    w.WriteString(forText is null ? "expires" : "for", forText ?? expires);
                    w.WriteString("reason", reason);
                    w.WriteEndObject();
                });
                var (answer, failure) = await client.SendAsync(HttpMethod.Post, "/v1/grants", body).ConfigureAwait(false);
                if (failure is not null)
                {
                    return await AdminClient.FailAsync(stderr, command, failure, CommandLine.CheckFailed).ConfigureAwait(false);
                }

                var g = answer!.Value;
                await stdout.WriteLineAsync($"{AdminClient.Text(g, "id")}: agent {AdminClient.Text(g, "agent")} may reach {Domains(g)} until {AdminClient.Text(g, "expires")} ({AdminClient.Text(g, "reason")})").ConfigureAwait(false);
                return CommandLine.Ok;
            }

            case "list":
            {
                var (answer, failure) = await client.SendAsync(HttpMethod.Get, "/v1/grants").ConfigureAwait(false);
                if (failure is not null)
                {
                    return await AdminClient.FailAsync(stderr, command, failure, CommandLine.CheckFailed).ConfigureAwait(false);
                }

                var grants = answer!.Value.EnumerateArray().Where(g => agent is null || AdminClient.Text(g, "agent") == agent).ToList();
                if (json)
                {
                    await stdout.WriteLineAsync(JsonSerializer.Serialize(grants, AdminClientJson.Default.ListJsonElement)).ConfigureAwait(false);
                    return CommandLine.Ok;
                }

                if (grants.Count == 0)
                {
                    await stdout.WriteLineAsync("no grants in force").ConfigureAwait(false);
                    return CommandLine.Ok;
                }

                var table = new List<string[]> { Header };
                foreach (var g in grants)
                {
                    table.Add([AdminClient.Text(g, "id"), AdminClient.Text(g, "agent"), Domains(g), AdminClient.Text(g, "expires"), AdminClient.Text(g, "actor"), AdminClient.Text(g, "reason")]);
                }

                await DenialsCommand.WriteTableAsync(stdout, table).ConfigureAwait(false);
                return CommandLine.Ok;
            }

            default:
            {
                var path = "/v1/grants/" + AdminClient.Escape(id!) + (reason is null ? string.Empty : "?reason=" + AdminClient.Escape(reason));
                var (_, failure) = await client.SendAsync(HttpMethod.Delete, path).ConfigureAwait(false);
                if (failure is not null)
                {
                    return await AdminClient.FailAsync(stderr, command, failure, CommandLine.CheckFailed).ConfigureAwait(false);
                }

                await stdout.WriteLineAsync($"{id}: revoked").ConfigureAwait(false);
                return CommandLine.Ok;
            }
        }
    }

    private static string Domains(JsonElement g) =>
        g.TryGetProperty("domains", out var d) && d.ValueKind == JsonValueKind.Array ? string.Join(",", d.EnumerateArray().Select(x => x.GetString())) : string.Empty;
}
