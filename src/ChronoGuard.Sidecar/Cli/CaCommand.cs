using System.Globalization;
using ChronoGuard.Inspection;

namespace ChronoGuard.Sidecar.Cli;

/// <summary>
/// <c>chronoguard ca init --out DIR [--permit DOMAIN]... [--days N]</c> (SPEC §7): the ECDSA P-256 CA
/// that signs the leaves of inspected tunnels. Each <c>--permit</c> adds a permitted DNS subtree, so a
/// leaked key can mint for nothing else.
/// </summary>
internal static class CaCommand
{
    public const int DefaultDays = 365;
    public const int MaxDays = 3650;

    public const string Usage = "usage: chronoguard ca init --out DIR [--permit DOMAIN]... [--days N]";

    public const string Help = """
        usage: chronoguard ca init --out DIR [--permit DOMAIN]... [--days N]

        Writes DIR/ca.crt (mode 0644) and DIR/ca.key (mode 0600), an ECDSA P-256 certificate authority
        for HTTPS inspection (README, "HTTPS inspection"); never replaces an existing CA. Point
        Inspection:CaCertFile and Inspection:CaKeyFile at them, and make the agents trust ca.crt.

          --out DIR        where to write (created if missing)
          --permit DOMAIN  the CA may only sign for DOMAIN and its subdomains (*.DOMAIN: subdomains only);
                           repeat for more; without any, it may sign for every name (X.509 name constraints)
          --days N         validity in days, 1..3650 (default 365)
        """;

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr, TimeProvider? time = null)
    {
        if (args.Length == 0)
        {
            stderr.WriteLine("ca: " + Usage);
            return CommandLine.UsageError;
        }

        if (args[0] is "--help" or "-h" or "help")
        {
            stdout.WriteLine(Help);
            return CommandLine.Ok;
        }

        if (args[0] != "init")
        {
            stderr.WriteLine($"ca: unknown subcommand '{args[0]}' ({Usage})");
            return CommandLine.UsageError;
        }

        string? dir = null;
        var days = DefaultDays;
        var permits = new List<string>();
        for (var i = 1; i < args.Length; i++)
        {
            var arg = args[i];
            if (arg is "--help" or "-h")
            {
                stdout.WriteLine(Help);
                return CommandLine.Ok;
            }

            if (arg is not ("--out" or "--permit" or "--days"))
            {
                stderr.WriteLine($"ca init: unexpected argument '{arg}' ({Usage})");
                return CommandLine.UsageError;
            }

            if (i + 1 >= args.Length)
            {
                stderr.WriteLine($"ca init: {arg} needs a value ({Usage})");
                return CommandLine.UsageError;
            }

            var value = args[++i];
            switch (arg)
            {
                case "--out" when dir is not null:
                    stderr.WriteLine("ca init: --out is given twice");
                    return CommandLine.UsageError;
                case "--out" when value.Length == 0:
                    stderr.WriteLine("ca init: --out is empty (a directory is required)");
                    return CommandLine.UsageError;
                case "--out":
                    dir = value;
                    break;
                case "--permit":
                    permits.Add(value);
                    break;
                default:
                    if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out days) || days < 1 || days > MaxDays)
                    {
                        stderr.WriteLine($"ca init: --days '{value}' is not a whole number of days from 1 to {MaxDays}");
                        return CommandLine.UsageError;
                    }

                    break;
            }
        }

        if (dir is null)
        {
            stderr.WriteLine($"ca init: --out DIR is required ({Usage})");
            return CommandLine.UsageError;
        }

        CertificateAuthority ca;
        try
        {
            ca = CertificateAuthority.Create(permits, days, time ?? TimeProvider.System);
        }
        catch (InspectionConfigException ex)
        {
            stderr.WriteLine($"ca init: --permit {ex.Message}");
            return CommandLine.UsageError;
        }

        using (ca)
        {
            try
            {
                ca.Save(dir);
            }
            catch (InspectionConfigException ex)
            {
                stderr.WriteLine("ca init: " + ex.Message);
                return CommandLine.UsageError;
            }

            var scope = ca.PermittedDomains.Count == 0
                ? "it may sign for any name"
                : "it may sign only for " + string.Join(", ", ca.PermittedDomains.Select(d => d.StartsWith('.') ? "*" + d : d + " and *." + d));
            var until = ca.Certificate.NotAfter.ToUniversalTime().ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
            stdout.WriteLine($"wrote {Path.Combine(dir, CertificateAuthority.CertificateFileName)} (Inspection:CaCertFile; agents trust it) and {Path.Combine(dir, CertificateAuthority.KeyFileName)} (Inspection:CaKeyFile, mode 0600), valid until {until}; {scope}");
            return CommandLine.Ok;
        }
    }
}
