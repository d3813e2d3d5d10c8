using System.Globalization;
using System.Text.Json;

namespace ChronoGuard.Sidecar.Cli;

/// <summary><c>chronoguard denials [--since T] [--agent A] [--json]</c>: refused destinations from a running sidecar (SPEC §9, <c>GET /v1/denials</c>).</summary>
internal static class DenialsCommand
{
    public const string Usage = """
        usage: chronoguard denials [--since T] [--agent A] [--json] [--admin http://HOST:PORT] [--token-file F]

        Refused destinations a running sidecar has seen, aggregated (agent, host, port, decision, reason,
        dialed address, count, first and last seen), most frequent first, from its admin API (Admin:Listen).
        The sidecar keeps the 4,096 most recently seen; older ones are dropped and counted.

          --since T          last seen at or after T: relative (90s, 10m, 1h, 7d) or ISO-8601 (default: all kept)
          --agent A          one agent's only
          --json             the API's JSON answer as it came
          --admin URL        the admin API (default $CHRONOGUARD_ADMIN)
          --token-file F     a file holding an admin bearer token (default $CHRONOGUARD_ADMIN_TOKEN_FILE)

        Exit 0 answered, 1 refused or unreachable, 2 usage or the token file cannot be read.
        """;

    private static readonly string[] Header = ["COUNT", "DECISION", "REASON", "AGENT", "DESTINATION", "DIALED", "LAST SEEN"];

    private static readonly string[] Options = ["--since", "--agent", "--json", "--admin", "--token-file"];

    public static async Task<int> RunAsync(string[] argv, TextWriter stdout, TextWriter stderr)
    {
        var args = argv.ToList();
        if (AdminClient.TakeOptions(args, out var admin, out var tokenFile) is { } optionError)
        {
            return await AdminClient.FailAsync(stderr, "denials", optionError, CommandLine.UsageError).ConfigureAwait(false);
        }

        string? since = null, agent = null;
        var json = false;
        for (var i = 0; i < args.Count; i++)
        {
            switch (args[i])
            {
                case "--since" or "--agent" when i + 1 >= args.Count:
                    return await AdminClient.FailAsync(stderr, "denials", $"{args[i]} needs a value", CommandLine.UsageError).ConfigureAwait(false);
                case "--since":
                    since = args[++i];
                    break;
                case "--agent":
                    agent = args[++i];
                    break;
                case "--json":
                    json = true;
                    break;
                default:
                    return await AdminClient.FailAsync(stderr, "denials", CommandLine.Unrecognised(args[i], Options), CommandLine.UsageError).ConfigureAwait(false);
            }
        }

        var (client, error) = AdminClient.Create(admin, tokenFile);
        if (client is null)
        {
            return await AdminClient.FailAsync(stderr, "denials", error!, CommandLine.UsageError).ConfigureAwait(false);
        }

        var query = new List<string>();
        if (since is not null)
        {
            query.Add("since=" + AdminClient.Escape(since));
        }

        if (agent is not null)
        {
            query.Add("agent=" + AdminClient.Escape(agent));
        }

        var (body, failure) = await client.SendAsync(HttpMethod.Get, "/v1/denials" + (query.Count == 0 ? string.Empty : "?" + string.Join('&', query))).ConfigureAwait(false);
        if (failure is not null)
        {
            return await AdminClient.FailAsync(stderr, "denials", failure, CommandLine.CheckFailed).ConfigureAwait(false);
        }

        var answer = body!.Value;
        if (json)
        {
            await stdout.WriteLineAsync(answer.GetRawText()).ConfigureAwait(false);
            return CommandLine.Ok;
        }

        var rows = answer.GetProperty("denials").EnumerateArray().ToList();
        if (rows.Count == 0)
        {
            await stdout.WriteLineAsync("no refusals" + (since is null ? string.Empty : " since " + since) + (agent is null ? string.Empty : " for agent " + agent)).ConfigureAwait(false);
        }
        else
        {
            var table = new List<string[]> { Header };
            foreach (var r in rows)
            {
                var enforced = r.TryGetProperty("enforced", out var e) && e.ValueKind == JsonValueKind.False ? " (observe)" : string.Empty;
                table.Add([
                    r.GetProperty("count").GetInt64().ToString(CultureInfo.InvariantCulture),
                    AdminClient.Text(r, "decision") + enforced,
                    AdminClient.Text(r, "reason"),
                    Dash(AdminClient.Text(r, "agent")),
                    AdminClient.Text(r, "host") + ":" + AdminClient.Text(r, "port"),
                    Dash(AdminClient.Text(r, "dialedIp")),
                    AdminClient.Text(r, "lastSeen"),
                ]);
            }

            await WriteTableAsync(stdout, table).ConfigureAwait(false);
        }

        if (answer.TryGetProperty("evicted", out var evicted) && evicted.GetInt64() > 0)
        {
            await stderr.WriteLineAsync($"denials: {evicted.GetInt64()} older entries were dropped (the sidecar keeps {AdminClient.Text(answer, "bound")})").ConfigureAwait(false);
        }

        return CommandLine.Ok;
    }

    private static string Dash(string s) => s.Length == 0 ? "-" : s;

    internal static async Task WriteTableAsync(TextWriter stdout, List<string[]> rows)
    {
        var widths = new int[rows[0].Length];
        foreach (var row in rows)
        {
            for (var c = 0; c < row.Length; c++)
            {
                widths[c] = Math.Max(widths[c], row[c].Length);
            }
        }

        foreach (var row in rows)
        {
            var cells = row.Select((cell, c) => c == row.Length - 1 ? cell : cell.PadRight(widths[c]));
            await stdout.WriteLineAsync(string.Join("  ", cells).TrimEnd()).ConfigureAwait(false);
        }
    }
}
