using System.Globalization;

namespace ChronoGuard.Policy;

/// <summary>Normalizes domain patterns at load time: case, one trailing dot, IDN to punycode, an optional port or range.</summary>
internal static class DomainNames
{
    private static readonly IdnMapping Idn = new() { AllowUnassigned = false, UseStd3AsciiRules = true };

    /// <summary>
    /// "GitHub.com." becomes "github.com", "*.bücher.de" becomes "*.xn--bcher-kva.de". Returns an error
    /// text, or null with the normalized pattern.
    /// </summary>
    public static string? TryNormalizePattern(string raw, out string pattern)
    {
        pattern = string.Empty;
        var s = raw.Trim();
        var wildcard = s.StartsWith("*.", StringComparison.Ordinal);
        if (wildcard)
        {
            s = s[2..];
        }

        if (s.EndsWith('.'))
        {
            s = s[..^1];
        }

        if (s.Length == 0)
        {
            return "empty domain";
        }

        if (s.Contains('*', StringComparison.Ordinal))
        {
            return "a wildcard is only allowed as a leading \"*.\" label";
        }

        string ascii;
        try
        {
            ascii = Idn.GetAscii(s).ToLowerInvariant();
        }
        catch (ArgumentException)
        {
            // IDNA refused it (a label too long, a character IDNA forbids); its message is a resource key under NativeAOT.
            return "not a valid domain name (IDNA refuses it)";
        }

        if (ascii.Length > 253)
        {
            return "domain longer than 253 characters";
        }

        pattern = wildcard ? "*." + ascii : ascii;
        return null;
    }

    /// <summary>
    /// A list entry (<c>allowedDomains</c>, <c>blockedDomains</c>, a grant's <c>domains</c>): a pattern
    /// with an optional port or inclusive range, <c>github.com:22</c>, <c>*.example.org:8000-8100</c>.
    /// The canonical form is the normalized name, then <c>:port</c> or <c>:lo-hi</c> in decimal without
    /// leading zeros (a one-port range is written as the port), so equal entries get one pattern id.
    /// Returns an error text, or null with the canonical pattern.
    /// </summary>
    public static string? TryNormalizeEntry(string raw, out string pattern)
    {
        pattern = string.Empty;
        var s = raw.Trim();
        if (s.Contains('/', StringComparison.Ordinal))
        {
            return TryNormalizeBlock(s, out pattern);
        }

        if (s.Contains('[', StringComparison.Ordinal) || s.Contains(']', StringComparison.Ordinal) || s.AsSpan().Count(':') > 1)
        {
            return "not a domain pattern: brackets or a second ':' (an IPv6 address is allowed with network.allowedCidrs; a port is written name:port)";
        }

        var colon = s.IndexOf(':', StringComparison.Ordinal);
        if (colon < 0)
        {
            return TryNormalizePattern(s, out pattern);
        }

        if (TryParsePorts(s.AsSpan(colon + 1), out var lo, out var hi) is { } portError)
        {
            return portError;
        }

        if (TryNormalizePattern(s[..colon], out var name) is { } nameError)
        {
            return nameError;
        }

        pattern = lo == hi
            ? string.Create(CultureInfo.InvariantCulture, $"{name}:{lo}")
            : string.Create(CultureInfo.InvariantCulture, $"{name}:{lo}-{hi}");
        return null;
    }

    /// <summary>
    /// An address block as an entry (SPEC §10: a destination with no name is its IP literal, which an
    /// entry may name as an address or a block): <c>10.0.0.0/8</c>, <c>2001:db8::/32</c>, and for IPv4
    /// a port or range after it, <c>10.0.0.0/8:5432</c>. The address must be the block's own (no host
    /// bits): <c>10.0.0.1/8</c> is a typo the parser would widen. Canonical: the block as .NET writes it.
    /// </summary>
    private static string? TryNormalizeBlock(string s, out string pattern)
    {
        pattern = string.Empty;
        var slash = s.IndexOf('/', StringComparison.Ordinal);
        var portColon = s.IndexOf(':', slash);
        var block = portColon < 0 ? s : s[..portColon];
        if (!System.Net.IPNetwork.TryParse(block, out var network)
            || !System.Net.IPAddress.TryParse(block.AsSpan(0, slash), out var given) || !given.Equals(network.BaseAddress))
        {
            return "not an address block: write ADDRESS/PREFIX with no host bits set (10.0.0.0/8, 2001:db8::/32)";
        }

        if (portColon < 0)
        {
            pattern = network.ToString();
            return null;
        }

        if (network.BaseAddress.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork)
        {
            return "an IPv6 block takes no port (its ':' would be ambiguous): name the port in allowedPorts";
        }

        if (TryParsePorts(s.AsSpan(portColon + 1), out var lo, out var hi) is { } portError)
        {
            return portError;
        }

        pattern = lo == hi
            ? string.Create(CultureInfo.InvariantCulture, $"{network}:{lo}")
            : string.Create(CultureInfo.InvariantCulture, $"{network}:{lo}-{hi}");
        return null;
    }

    /// <summary>
    /// Splits a canonical entry (see <see cref="TryNormalizeEntry"/>) into its name and ports; an entry
    /// without a port reports the whole range of int, so it covers every port a request can name.
    /// </summary>
    public static bool SplitPorts(string pattern, out string name, out int lo, out int hi)
    {
        // An address block's own ':'s (IPv6) come before its '/': only one after it starts the ports.
        var colon = pattern.IndexOf(':', Math.Max(0, pattern.IndexOf('/', StringComparison.Ordinal)));
        if (colon < 0)
        {
            (name, lo, hi) = (pattern, int.MinValue, int.MaxValue);
            return false;
        }

        name = pattern[..colon];
        TryParsePorts(pattern.AsSpan(colon + 1), out lo, out hi);
        return true;
    }

    /// <summary><c>22</c> or <c>8000-8100</c>: decimal ports 1..65535, the range inclusive and not backwards.</summary>
    private static string? TryParsePorts(ReadOnlySpan<char> text, out int lo, out int hi)
    {
        hi = 0;
        var dash = text.IndexOf('-');
        if (TryParsePort(dash < 0 ? text : text[..dash], out lo) is { } loError)
        {
            return loError;
        }

        if (dash < 0)
        {
            hi = lo;
            return null;
        }

        if (TryParsePort(text[(dash + 1)..], out hi) is { } hiError)
        {
            return hiError;
        }

        return lo > hi ? $"port range {lo}-{hi} runs backwards (write {hi}-{lo})" : null;
    }

    private static string? TryParsePort(ReadOnlySpan<char> text, out int port)
    {
        port = 0;
        if (text.IsEmpty)
        {
            return "a port is missing after ':' (write name:port or name:low-high)";
        }

        foreach (var c in text)
        {
            if (!char.IsAsciiDigit(c))
            {
                return $"port \"{text}\" is not a number (write name:port or name:low-high)";
            }

            port = Math.Min(100_000, (port * 10) + (c - '0'));
        }

        return port is < 1 or > 65535 ? $"port {text} is outside 1-65535" : null;
    }

    /// <summary>Lowercases and strips one trailing dot; non-ASCII hosts are normalized through IDN.</summary>
    public static string NormalizeHost(string host)
    {
        var s = host.EndsWith('.') ? host[..^1] : host;
        try
        {
            return Idn.GetAscii(s).ToLowerInvariant();
        }
        catch (ArgumentException)
        {
            return s.ToLowerInvariant();
        }
    }
}
