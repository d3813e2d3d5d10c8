using System.Text.Json;

namespace ChronoGuard.Sidecar.Cli;

/// <summary>
/// <c>chronoguard pending</c>, <c>approve ID [--for 1h] [--suffix]</c>, <c>deny ID</c>: the requests a
/// running sidecar holds under <c>ask</c>, and an operator's answer (SPEC §9, <c>/v1/pending</c>).
/// </summary>
internal static class ApprovalCommand
{
    private const string Connection = """
          --admin URL        the admin API (default $CHRONOGUARD_ADMIN)
          --token-file F     a file holding an admin bearer token (default $CHRONOGUARD_ADMIN_TOKEN_FILE);
                             the token's name in Admin:TokenSha256 is recorded as the actor

        Exit 0 done, 1 refused (the sidecar's reason on stderr) or unreachable, 2 usage or the token file cannot be read.
        """;

    public const string PendingUsage = """
        usage: chronoguard pending [--agent A] [--json] [--admin http://HOST:PORT] [--token-file F]

        The approvals open now: destinations an agent asked for that its policy neither allows nor
        blocks, under "defaultAction": "ask" or "unlisted": "ask". Each holds the agent's requests to
        that host and port until approved, denied, or Admin:AskTimeoutMs passes.

          --agent A          one agent's only
          --json             the API's JSON answer as it came
        """ + "\n" + Connection;

    public const string ApproveUsage = """
        usage: chronoguard approve ID [--for DURATION] [--suffix] [--reason R] [--admin http://HOST:PORT] [--token-file F]

        Approves the pending request ID (from chronoguard pending): a runtime grant for its agent and
        host is made (chained in the audit log with you as the actor, kept in grants.json), and every
        request it covers goes on now. Later requests within the duration are allowed without asking.

          --for DURATION     how long the grant lasts: 90s, 10m, 1h, 7d (default 1h)
          --suffix           grant *.parent of the host (api.example.com: *.example.com) instead of the
                             host alone; refused where the parent is a public suffix
          --reason R         why: recorded with the grant (default: the approval's id and destination)
        """ + "\n" + Connection;

    public const string DenyUsage = """
        usage: chronoguard deny ID [--reason R] [--admin http://HOST:PORT] [--token-file F]

        Refuses the pending request ID: every request it holds is answered 403 approval_denied, and the
        refusal is chained in the audit log with you as the actor. The agent may ask again later.

          --reason R         why: recorded with the refusal
        """ + "\n" + Connection;

    private static readonly string[] Header = ["ID", "AGENT", "DESTINATION", "METHOD", "HELD", "SINCE", "EXPIRES"];

    public static async Task<int> RunAsync(string command, string[] argv, TextWriter stdout, TextWriter stderr)
    {
        var args = argv.ToList();
        if (AdminClient.TakeOptions(args, out var admin, out var tokenFile) is { } optionError)
        {
            return await AdminClient.FailAsync(stderr, command, optionError, CommandLine.UsageError).ConfigureAwait(false);
        }

        string[] options = command switch
        {
            "pending" => ["--agent", "--json", "--admin", "--token-file"],
            "approve" => ["--for", "--suffix", "--reason", "--admin", "--token-file"],
            _ => ["--reason", "--admin", "--token-file"],
        };
        string? id = null, agent = null, forText = null, reason = null;
        bool json = false, suffix = false;
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (arg is "--agent" or "--for" or "--reason" && Array.IndexOf(options, arg) >= 0)
            {
                if (i + 1 >= args.Count)
                {
                    return await AdminClient.FailAsync(stderr, command, $"{arg} needs a value", CommandLine.UsageError).ConfigureAwait(false);
                }

                var value = args[++i];
                switch (arg)
                {
                    case "--agent": agent = value; break;
                    case "--for": forText = value; break;
                    default: reason = value; break;
                }
            }
            else if (arg == "--json" && command == "pending")
            {
                json = true;
            }
            else if (arg == "--suffix" && command == "approve")
            {
                suffix = true;
            }
            else if (command != "pending" && id is null && !arg.StartsWith('-'))
            {
                id = arg;
            }
            else
            {
                var problem = CommandLine.Unrecognised(arg, options);
                return await AdminClient.FailAsync(stderr, command, command != "pending" && !arg.StartsWith('-') ? problem + $" ({command} takes one ID)" : problem, CommandLine.UsageError).ConfigureAwait(false);
            }
        }

        if (command != "pending" && id is null)
        {
            var usage = command == "approve" ? ApproveUsage : DenyUsage;
            return await AdminClient.FailAsync(stderr, command, $"the pending request's ID is required, see chronoguard pending ({usage.Split('\n')[0]})", CommandLine.UsageError).ConfigureAwait(false);
        }

        var (client, error) = AdminClient.Create(admin, tokenFile);
        if (client is null)
        {
            return await AdminClient.FailAsync(stderr, command, error!, CommandLine.UsageError).ConfigureAwait(false);
        }

        if (command == "pending")
        {
            var (answer, failure) = await client.SendAsync(HttpMethod.Get, "/v1/pending").ConfigureAwait(false);
            if (failure is not null)
            {
                return await AdminClient.FailAsync(stderr, command, failure, CommandLine.CheckFailed).ConfigureAwait(false);
            }

            var open = answer!.Value.EnumerateArray().Where(p => agent is null || AdminClient.Text(p, "agent") == agent).ToList();
            if (json)
            {
                await stdout.WriteLineAsync(JsonSerializer.Serialize(open, AdminClientJson.Default.ListJsonElement)).ConfigureAwait(false);
                return CommandLine.Ok;
            }

            if (open.Count == 0)
            {
                await stdout.WriteLineAsync("no pending approvals").ConfigureAwait(false);
                return CommandLine.Ok;
            }

            var table = new List<string[]> { Header };
            foreach (var p in open)
            {
                table.Add([AdminClient.Text(p, "id"), AdminClient.Text(p, "agent"), AdminClient.Text(p, "host") + ":" + AdminClient.Text(p, "port"),
                    AdminClient.Text(p, "method"), AdminClient.Text(p, "held"), AdminClient.Text(p, "since"), AdminClient.Text(p, "expires")]);
            }

            await DenialsCommand.WriteTableAsync(stdout, table).ConfigureAwait(false);
            return CommandLine.Ok;
        }

        var body = AdminClient.Json(w =>
        {
            w.WriteStartObject();
            w.WriteBoolean("approve", command == "approve");
            if (forText is not null)
            {
                w.WriteString("for", forText);
            }

            if (suffix)
            {
                w.WriteString("scope", "suffix");
            }

            if (reason is not null)
            {
                w.WriteString("reason", reason);
            }

            w.WriteEndObject();
        });
        var (result, refused) = await client.SendAsync(HttpMethod.Post, "/v1/pending/" + AdminClient.Escape(id!), body).ConfigureAwait(false);
        if (refused is not null)
        {
            return await AdminClient.FailAsync(stderr, command, refused, CommandLine.CheckFailed).ConfigureAwait(false);
        }

        var r = result!.Value;
        if (command == "approve")
        {
            var g = r.GetProperty("grant");
            var domains = string.Join(",", g.GetProperty("domains").EnumerateArray().Select(d => d.GetString()));
            await stdout.WriteLineAsync($"{id}: approved: grant {AdminClient.Text(g, "id")}: agent {AdminClient.Text(g, "agent")} may reach {domains} until {AdminClient.Text(g, "expires")}").ConfigureAwait(false);
        }
        else
        {
            await stdout.WriteLineAsync($"{id}: denied ({AdminClient.Text(r, "refused")} held request(s) refused)").ConfigureAwait(false);
        }

        return CommandLine.Ok;
    }
}
