using System.Net;

namespace ChronoGuard.Net;

/// <summary>The system resolver's configuration (resolv.conf(5)), as far as the DNS guard's default upstream needs it.</summary>
internal static class ResolvConf
{
    public const string DefaultPath = "/etc/resolv.conf";

    /// <summary>The first <c>nameserver</c> line's address on port 53; null when there is none (or no file).</summary>
    public static IPEndPoint? FirstNameserver(string path)
    {
        if (!File.Exists(path))
        {
            return null;
        }

        foreach (var raw in File.ReadLines(path))
        {
            var line = raw.AsSpan().Trim();
            if (!line.StartsWith("nameserver") || line.Length <= "nameserver".Length || !char.IsWhiteSpace(line["nameserver".Length]))
            {
                continue;
            }

            var value = line["nameserver".Length..].Trim();
            var end = value.IndexOfAny(" \t#;");
            value = end < 0 ? value : value[..end];
            // A scoped IPv6 address (fe80::1%eth0) parses with its scope id.
            if (IPAddress.TryParse(value, out var address))
            {
                return new IPEndPoint(address, 53);
            }
        }

        return null;
    }
}
