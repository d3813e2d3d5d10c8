namespace ChronoGuard.Sidecar.Cli;

/// <summary>
/// The usage of every command and subcommand (SPEC §3), printed on stdout for <c>-h</c>/<c>--help</c>
/// (exit 0) and named in usage errors. Keyed by the command as typed after <c>chronoguard</c>.
/// </summary>
internal static class CommandHelp
{
    /// <summary>Top-level commands and the subcommands each takes (empty: none). A new command needs its row here and its text below.</summary>
    public static readonly (string Command, string[] Subcommands)[] Commands =
    [
        ("run", []),
        ("verify", []),
        ("export", []),
        ("audit", ["verify", "export", "repair", "keygen"]),
        ("ca", ["init"]),
        ("policy", ["check", "explain", "suggest"]),
        ("denials", []),
        ("grant", ["add", "list", "revoke"]),
        ("pending", []),
        ("approve", []),
        ("deny", []),
        ("healthcheck", []),
        ("hash-token", []),
        ("version", []),
        ("help", []),
    ];

    private const string Run = """
        usage: chronoguard run [--config FILE] [--policy FILE] [--listen HOST:PORT] [--stats HOST:PORT] [--audit-dir DIR]

        Runs the sidecar. Settings come from chronoguard.json (or --config), then CHRONOGUARD__Section__Key
        environment variables, then these flags. Without a policy file it runs in observe mode.

          --config FILE       configuration file (default ./chronoguard.json when it exists)
          --policy FILE       policy file (Policy:Path)
          --listen HOST:PORT  proxy listener (Proxy:Listen, default 127.0.0.1:3128)
          --stats HOST:PORT   stats listener: /metrics, /stats, /healthz, /readyz (Stats:Listen, default 127.0.0.1:9477)
          --audit-dir DIR     audit log directory (Audit:Directory, default ./chronoguard-audit)
          --VALUE=X forms are accepted too (--policy=p.json)
        """;

    private const string Verify = """
        usage: chronoguard verify --audit-dir DIR | --jsonl FILE | --csv FILE [--key-file F] [--expect-head SEQ:HASH]
                                  [--checkpoints F --public-key K] [--json]
               (also: chronoguard audit verify ...)

        Walks the hash chain. Exit 0 valid, 1 invalid (names the first broken seq and why), 2 usage or I/O error.

          --audit-dir DIR        the sidecar's audit directory
          --jsonl FILE           a JSONL export
          --csv FILE             a CSV export
          --key-file F           the HMAC key (Audit:HmacKeyFile) the chain was written with
          --expect-head SEQ:HASH the chain must reach this head (finds a truncated tail)
          --checkpoints F        signed checkpoints (checkpoints.jsonl) the log must reach, with
          --public-key K         the key that signed them (chronoguard audit keygen)
          --json                 the result as one JSON object
        """;

    private const string Export = """
        usage: chronoguard export --audit-dir DIR [--format jsonl|csv] [--since T] [--until T] [--agent A]
                                  [--decision D[,D]] [--not-decision D[,D]] [--reason R[,R]] [--host GLOB]
                                  [--follow] [--salvage] [--out F]
               (also: chronoguard audit export ...)

        Writes the audit records as JSONL (default) or CSV. Filters combine (all must hold); a comma list
        matches any of its values.

          --since T, --until T  records at or after T, before T: ISO-8601 (no zone = UTC), a date, or
                                relative to now (90s, 10m, 1h, 7d)
          --agent A             the agent id
          --decision D[,D]      ALLOW, DENY, BLOCK, RATE_LIMITED, TIME_RESTRICTED, POLICY_VIOLATION
          --not-decision D[,D]  every record except these decisions (system and close records have none)
          --reason R[,R]        the reason (default_deny, private_destination, ...)
          --host GLOB           the host: * matches any characters (*.example.com, api.*)
          --follow              keep reading as the sidecar appends (Ctrl-C stops)
          --salvage             skip damaged records (each named on stderr) instead of stopping at them
          --out F               write to F instead of standard output
        """;

    private const string Audit = """
        usage: chronoguard audit verify|export|repair|keygen ...

          audit verify   --audit-dir DIR | --jsonl FILE | --csv FILE ...   check the hash chain (= chronoguard verify)
          audit export   --audit-dir DIR [filters] ...                     records as JSONL or CSV (= chronoguard export)
          audit repair   --audit-dir DIR     move a damaged log aside; the next start records the repair
          audit keygen   --out DIR           checkpoint signing key pair (ECDSA P-256)

        chronoguard audit COMMAND --help shows the options of one.
        """;

    private const string AuditRepair = """
        usage: chronoguard audit repair --audit-dir DIR

        Moves the damaged segments of an audit log aside (kept, never deleted) and keeps every record that
        is readable and continues the chain; the next start writes a chained system record (reason=repair)
        naming the last good seq and the lost range. Stop the sidecar first.
        """;

    private const string AuditKeygen = """
        usage: chronoguard audit keygen --out DIR

        Writes DIR/checkpoint-signing.key (private, mode 0600: Audit:SigningKeyFile) and
        DIR/checkpoint-signing.pub (public: verify --public-key). Never replaces an existing key.
        """;

    private const string Policy = """
        usage: chronoguard policy check|explain|suggest ...

          policy check    FILE     compile a policy file; exit 0 valid, 1 invalid (one line naming the line and JSON path)
          policy explain  FILE --agent A --target HOST:PORT [--method M] [--path P] [--at ISO-8601] [--resolve | --resolver IP:PORT]
                                   walk the decision step by step; exit 0 allowed, 1 refused
          policy suggest  --audit-dir DIR [--since T] [--agent A]
                                   a policy draft allowing what an audit log shows was asked for

        chronoguard policy COMMAND --help shows the options of one.
        """;

    private const string PolicyCheck = """
        usage: chronoguard policy check FILE

        Compiles the policy file as run would. Exit 0 valid (prints a summary and its sha256), 1 invalid
        (one line naming the file, line, JSON path and problem), 2 the file cannot be read.
        """;

    private const string PolicyExplain = """
        usage: chronoguard policy explain FILE --agent A --target HOST:PORT [--method M] [--path P] [--at ISO-8601] [--resolve | --resolver IP:PORT]

        Decides one request as the proxy would and prints each step. Exit 0 allowed, 1 refused (or, with
        --resolve, no address to dial), 2 usage or no answer from the resolver.

          --agent A          the agent (may be left out when the policy has one agent)
          --target HOST:PORT the CONNECT target, or the host and port of a plain-HTTP request
          --method M         an HTTP method (plain HTTP or inside an inspected tunnel; default CONNECT)
          --path P           the request path, as the agent sends it
          --at T             decide at this ISO-8601 time (default now; time windows and grants)
          --resolve          resolve a host name with the system resolver (what run uses) and judge every
                             address with the network guard as the proxy does: refused when none passes,
                             else only those that pass are dialed. Without it a name's addresses are not
                             judged, and an ALLOW says so
          --resolver IP:PORT resolve with this DNS server instead (A and AAAA; port 53 by default)
        """;

    private const string Ca = """
        usage: chronoguard ca init --out DIR [--permit DOMAIN]... [--days N]

        chronoguard ca init --help shows the options.
        """;

    private const string Healthcheck = """
        usage: chronoguard healthcheck [--stats HOST:PORT] [--path /readyz]

        GET the path on the stats listener; exit 0 when it answers 200, 1 otherwise, 2 usage.
        For container health checks in images without a shell or curl.

          --stats HOST:PORT  the stats listener (default 127.0.0.1:9477)
          --path P           the path to ask for (default /readyz; /healthz for liveness)
        """;

    private const string HashToken = """
        usage: chronoguard hash-token < token-file

        Reads one token on stdin (one trailing newline ignored) and prints the lowercase hex SHA-256 of its
        UTF-8 bytes, for an agent's tokenSha256 in the policy file or an admin token's Sha256 in
        Admin:TokenSha256.
        """;

    private const string Version = """
        usage: chronoguard --version | -V

        Prints the version.
        """;

    /// <summary>The help of a command path ("policy check"), or null when there is none.</summary>
    public static string? For(string command) => command switch
    {
        "run" => Run,
        "verify" or "audit verify" => Verify,
        "export" or "audit export" => Export,
        "audit" => Audit,
        "audit repair" => AuditRepair,
        "audit keygen" => AuditKeygen,
        "policy" => Policy,
        "policy check" => PolicyCheck,
        "policy explain" => PolicyExplain,
        "policy suggest" => PolicySuggestCommand.Usage,
        "ca" => Ca,
        "ca init" => CaCommand.Help,
        "denials" => DenialsCommand.Usage,
        "grant" => GrantCommand.Group,
        "grant add" => GrantCommand.AddUsage,
        "grant list" => GrantCommand.ListUsage,
        "grant revoke" => GrantCommand.RevokeUsage,
        "pending" => ApprovalCommand.PendingUsage,
        "approve" => ApprovalCommand.ApproveUsage,
        "deny" => ApprovalCommand.DenyUsage,
        "healthcheck" => Healthcheck,
        "hash-token" => HashToken,
        "version" => Version,
        "help" => CommandLine.Usage,
        _ => null,
    };

    /// <summary>Whether the arguments ask for help: <c>-h</c> or <c>--help</c> anywhere (a value is never spelled so).</summary>
    public static bool Asked(ReadOnlySpan<string> args)
    {
        foreach (var arg in args)
        {
            if (arg is "-h" or "--help")
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The known name nearest to a typo (edit distance at most 2, and less than its length), or null.</summary>
    public static string? Nearest(string typed, IEnumerable<string> names)
    {
        string? best = null;
        var bestDistance = int.MaxValue;
        foreach (var name in names)
        {
            var d = Distance(typed.ToLowerInvariant(), name.ToLowerInvariant());
            if (d < bestDistance)
            {
                (best, bestDistance) = (name, d);
            }
        }

        return bestDistance <= Math.Min(2, Math.Max(1, typed.Length - 1)) ? best : null;
    }

    /// <summary>"unknown command 'x'" with the nearest known name, for one line on stderr.</summary>
    public static string Unknown(string what, string typed, IEnumerable<string> names, string helpCommand) =>
        Nearest(typed, names) is { } near
            ? $"unknown {what} '{typed}' (did you mean '{near}'? see {helpCommand} --help)"
            : $"unknown {what} '{typed}' (see {helpCommand} --help)";

    /// <summary>Optimal string alignment distance: a swapped pair of letters is one edit, as people mistype.</summary>
    private static int Distance(string a, string b)
    {
        var w = b.Length + 1;
        var d = new int[(a.Length + 1) * w];
        for (var i = 0; i <= a.Length; i++)
        {
            d[i * w] = i;
        }

        for (var j = 0; j <= b.Length; j++)
        {
            d[j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                var best = Math.Min(Math.Min(d[((i - 1) * w) + j] + 1, d[(i * w) + j - 1] + 1), d[((i - 1) * w) + j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                {
                    best = Math.Min(best, d[((i - 2) * w) + j - 2] + 1);
                }

                d[(i * w) + j] = best;
            }
        }

        return d[(a.Length * w) + b.Length];
    }
}
