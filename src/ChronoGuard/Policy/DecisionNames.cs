namespace ChronoGuard.Policy;

/// <summary>SPEC wire names for <see cref="Decision"/>, as static strings and UTF-8 so no path formats them.</summary>
internal static class DecisionNames
{
    /// <summary>Number of <see cref="Decision"/> values; arrays indexed by decision use it.</summary>
    public const int Count = 6;

    private static readonly string[] Names = ["ALLOW", "DENY", "BLOCK", "POLICY_VIOLATION", "TIME_RESTRICTED", "RATE_LIMITED"];

    /// <summary>The SPEC name, e.g. <c>POLICY_VIOLATION</c>.</summary>
    public static string Name(Decision d) => Names[(int)d];

    /// <summary>Parses a SPEC name (case-insensitive); false for anything else.</summary>
    public static bool TryParse(ReadOnlySpan<char> s, out Decision d)
    {
        for (var i = 0; i < Names.Length; i++)
        {
            if (s.Equals(Names[i], StringComparison.OrdinalIgnoreCase))
            {
                d = (Decision)i;
                return true;
            }
        }

        d = default;
        return false;
    }
}
