using System.Globalization;

namespace ChronoGuard.Policy;

/// <summary>
/// DNS query types by mnemonic (SPEC §10, a policy's <c>dnsTypes</c>): the common ones by name, any
/// other as <c>TYPEnnn</c> (RFC 3597). A, AAAA, CNAME, HTTPS and SVCB are always answerable and need
/// no listing.
/// </summary>
internal static class DnsTypeNames
{
    private static readonly (string Name, ushort Type)[] Known =
    [
        ("A", 1), ("NS", 2), ("CNAME", 5), ("SOA", 6), ("NULL", 10), ("PTR", 12), ("HINFO", 13), ("MX", 15),
        ("TXT", 16), ("AAAA", 28), ("SRV", 33), ("NAPTR", 35), ("DNAME", 39), ("DS", 43), ("SSHFP", 44),
        ("RRSIG", 46), ("NSEC", 47), ("DNSKEY", 48), ("TLSA", 52), ("SVCB", 64), ("HTTPS", 65), ("SPF", 99),
        ("AXFR", 252), ("ANY", 255), ("CAA", 257),
    ];

    /// <summary>The types answered whatever <c>dnsTypes</c> says.</summary>
    public static bool IsDefault(ushort type) => type is 1 or 5 or 28 or 64 or 65;

    public static bool TryParse(string text, out ushort type)
    {
        foreach (var (name, value) in Known)
        {
            if (string.Equals(name, text, StringComparison.OrdinalIgnoreCase))
            {
                type = value;
                return true;
            }
        }

        type = 0;
        return text.StartsWith("TYPE", StringComparison.OrdinalIgnoreCase)
            && ushort.TryParse(text.AsSpan(4), NumberStyles.None, CultureInfo.InvariantCulture, out type);
    }

    /// <summary>The mnemonic of a type (a constant string for the known ones: the record's path on a refusal).</summary>
    public static string Name(ushort type)
    {
        foreach (var (name, value) in Known)
        {
            if (value == type)
            {
                return name;
            }
        }

        return "TYPE" + type.ToString(CultureInfo.InvariantCulture);
    }
}
