using System.Buffers;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;

namespace ChronoGuard.Policy;

/// <summary>One compiled <c>when</c> condition: values pre-encoded to bytes, regexes built once (linear-time).</summary>
internal sealed class Condition
{
    public required RuleField Field { get; init; }

    public required RuleOp Op { get; init; }

    public byte[][] Strings { get; init; } = [];

    public long[] Numbers { get; init; } = [];

    public IPNetwork[] Networks { get; init; } = [];

    public Regex? Pattern { get; init; }

    /// <summary>
    /// One case rule for every operator, regex included (SPEC §4): <c>domain</c> and <c>method</c> without
    /// regard to case, <c>path</c> and <c>user_agent</c> exactly unless the condition says <c>ignoreCase</c>.
    /// </summary>
    public bool IgnoreCase { get; init; }

    /// <param name="localMinuteOfWeek">The request time in the policy's zone (for day_of_week and hour).</param>
    /// <param name="eitherReading">
    /// How a path with parameters is judged: origins differ on whether <c>;…</c> belongs to the segment,
    /// so a condition that refuses (deny, rate_limit, log) matches when either reading does, and one
    /// that allows only when both do.
    /// </param>
    public bool Matches(in RequestFacts facts, int localMinuteOfWeek, bool eitherReading)
    {
        switch (Field)
        {
            case RuleField.Port:
                return MatchNumber(facts.Port);
            case RuleField.DayOfWeek:
                return MatchNumber(localMinuteOfWeek / 1440);
            case RuleField.Hour:
                return MatchNumber(localMinuteOfWeek % 1440 / 60);
            case RuleField.SourceIp:
                return MatchAddress(facts.Source);
            case RuleField.Path:
                var kept = MatchText(facts.Path, IgnoreCase);
                if (!facts.HasPathParameters || kept == eitherReading)
                {
                    return kept;
                }

                return MatchText(facts.PathWithoutParameters, IgnoreCase);
            default:
                var value = Field switch
                {
                    RuleField.Domain => TrimDot(facts.Host),
                    RuleField.Method => facts.Method,
                    _ => facts.UserAgent,
                };
                return MatchText(value, IgnoreCase);
        }
    }

    private bool MatchText(ReadOnlySpan<byte> value, bool ignoreCase)
    {
        switch (Op)
        {
            case RuleOp.Equals:
            case RuleOp.In:
                return AnyEqual(value, ignoreCase);
            case RuleOp.NotEquals:
            case RuleOp.NotIn:
                return !AnyEqual(value, ignoreCase);
            case RuleOp.Regex:
                return MatchRegex(value);
        }

        foreach (var s in Strings)
        {
            if (value.Length < s.Length)
            {
                continue;
            }

            var hit = Op switch
            {
                RuleOp.StartsWith => Equal(value[..s.Length], s, ignoreCase),
                RuleOp.EndsWith => Equal(value[^s.Length..], s, ignoreCase),
                _ => ignoreCase ? IndexOfIgnoreCase(value, s) >= 0 : value.IndexOf(s) >= 0,
            };
            if (hit)
            {
                return true;
            }
        }

        return false;
    }

    private bool AnyEqual(ReadOnlySpan<byte> value, bool ignoreCase)
    {
        foreach (var s in Strings)
        {
            if (Equal(value, s, ignoreCase))
            {
                return true;
            }
        }

        return false;
    }

    private bool MatchRegex(ReadOnlySpan<byte> value)
    {
        // Request fields are ASCII (the parser guarantees it); widen into chars without allocating.
        char[]? rented = null;
        var chars = value.Length <= 1024 ? stackalloc char[value.Length] : (rented = ArrayPool<char>.Shared.Rent(value.Length)).AsSpan(0, value.Length);
        try
        {
            // Built with RegexOptions.NonBacktracking and no timeout (PolicyCompiler.CompileRegex):
            // linear in the input, so there is no timeout to be mistaken for "no match".
            Encoding.Latin1.GetChars(value, chars);
            return Pattern!.IsMatch(chars);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<char>.Shared.Return(rented);
            }
        }
    }

    private bool MatchNumber(long value) => Op switch
    {
        RuleOp.Gt => value > Numbers[0],
        RuleOp.Lt => value < Numbers[0],
        RuleOp.NotEquals or RuleOp.NotIn => Array.IndexOf(Numbers, value) < 0,
        _ => Array.IndexOf(Numbers, value) >= 0,
    };

    private bool MatchAddress(IPAddress? source)
    {
        if (source is null)
        {
            return false;
        }

        var address = source.IsIPv4MappedToIPv6 ? source.MapToIPv4() : source;
        var inside = false;
        foreach (var n in Networks)
        {
            if (n.Contains(address))
            {
                inside = true;
                break;
            }
        }

        return Op is RuleOp.NotEquals or RuleOp.NotIn ? !inside : inside;
    }

    private static ReadOnlySpan<byte> TrimDot(ReadOnlySpan<byte> host) => !host.IsEmpty && host[^1] == (byte)'.' ? host[..^1] : host;

    private static bool Equal(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, bool ignoreCase) =>
        ignoreCase ? Ascii.EqualsIgnoreCase(a, b) : a.SequenceEqual(b);

    private static int IndexOfIgnoreCase(ReadOnlySpan<byte> value, ReadOnlySpan<byte> needle)
    {
        for (var i = 0; i + needle.Length <= value.Length; i++)
        {
            if (Ascii.EqualsIgnoreCase(value.Slice(i, needle.Length), needle))
            {
                return i;
            }
        }

        return -1;
    }
}
