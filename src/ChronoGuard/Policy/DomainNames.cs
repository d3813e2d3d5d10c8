using System.Globalization;

namespace ChronoGuard.Policy;

/// <summary>Normalizes domain patterns at load time: case, one trailing dot, IDN to punycode.</summary>
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
