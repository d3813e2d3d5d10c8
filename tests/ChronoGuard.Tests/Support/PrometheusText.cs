using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace ChronoGuard.Tests.Support;

/// <summary>
/// A strict reader of the Prometheus text format 0.0.4, written from the format's description: it
/// rejects what a lenient scraper might let through (a sample before its TYPE, a repeated TYPE or
/// HELP, bad escapes, duplicate series, non-cumulative buckets, a +Inf bucket that is not the count).
/// </summary>
internal static partial class PrometheusText
{
    internal sealed record Sample(string Name, IReadOnlyDictionary<string, string> Labels, double Value);

    internal sealed class Family
    {
        public required string Name { get; init; }

        public string? Help { get; set; }

        public string? Type { get; set; }

        public List<Sample> Samples { get; } = [];
    }

    public static Dictionary<string, Family> Parse(string text)
    {
        if (!text.EndsWith('\n'))
        {
            throw new FormatException("the exposition must end with a line feed");
        }

        var families = new Dictionary<string, Family>(StringComparer.Ordinal);
        var series = new HashSet<string>(StringComparer.Ordinal);
        var lineNo = 0;
        foreach (var line in text[..^1].Split('\n'))
        {
            lineNo++;
            string Where() => $"line {lineNo} \"{line}\"";
            if (line.Length == 0)
            {
                throw new FormatException($"{Where()}: empty line");
            }

            if (line.StartsWith("# HELP ", StringComparison.Ordinal) || line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                var rest = line[7..];
                var space = rest.IndexOf(' ', StringComparison.Ordinal);
                var name = space < 0 ? rest : rest[..space];
                var value = space < 0 ? string.Empty : rest[(space + 1)..];
                if (!MetricName().IsMatch(name))
                {
                    throw new FormatException($"{Where()}: bad metric name");
                }

                var family = families.TryGetValue(name, out var f) ? f : families[name] = new Family { Name = name };
                if (family.Samples.Count > 0)
                {
                    throw new FormatException($"{Where()}: HELP/TYPE after samples of {name}");
                }

                if (line[2] == 'H')
                {
                    if (family.Help is not null)
                    {
                        throw new FormatException($"{Where()}: second HELP");
                    }

                    family.Help = Unescape(value, allowQuote: false, Where);
                }
                else
                {
                    if (family.Type is not null)
                    {
                        throw new FormatException($"{Where()}: second TYPE");
                    }

                    if (value is not ("counter" or "gauge" or "histogram" or "summary" or "untyped"))
                    {
                        throw new FormatException($"{Where()}: unknown type {value}");
                    }

                    family.Type = value;
                }

                continue;
            }

            if (line.StartsWith('#'))
            {
                continue;
            }

            var m = SampleLine().Match(line);
            if (!m.Success)
            {
                throw new FormatException($"{Where()}: not a sample line");
            }

            var sampleName = m.Groups["name"].Value;
            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            var labelText = m.Groups["labels"].Value;
            var pos = 0;
            while (pos < labelText.Length)
            {
                var lm = LabelPair().Match(labelText, pos);
                if (!lm.Success || lm.Index != pos)
                {
                    throw new FormatException($"{Where()}: bad label list");
                }

                var labelName = lm.Groups["k"].Value;
                if (!labels.TryAdd(labelName, Unescape(lm.Groups["v"].Value, allowQuote: true, Where)))
                {
                    throw new FormatException($"{Where()}: label {labelName} repeated");
                }

                pos = lm.Index + lm.Length;
                if (pos < labelText.Length)
                {
                    if (labelText[pos] != ',')
                    {
                        throw new FormatException($"{Where()}: expected a comma between labels");
                    }

                    pos++;
                }
            }

            var valueText = m.Groups["value"].Value;
            var number = valueText switch
            {
                "+Inf" => double.PositiveInfinity,
                "-Inf" => double.NegativeInfinity,
                "NaN" => double.NaN,
                _ => double.Parse(valueText, NumberStyles.Float, CultureInfo.InvariantCulture),
            };

            var familyName = FamilyOf(sampleName, families);
            if (!families.TryGetValue(familyName, out var owner) || owner.Type is null || owner.Help is null)
            {
                throw new FormatException($"{Where()}: sample before its family's HELP and TYPE");
            }

            var key = sampleName + "{" + string.Join(",", labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => l.Key + "=" + l.Value)) + "}";
            if (!series.Add(key))
            {
                throw new FormatException($"{Where()}: duplicate series {key}");
            }

            owner.Samples.Add(new Sample(sampleName, labels, number));
        }

        foreach (var family in families.Values.Where(f => f.Type == "histogram"))
        {
            CheckHistogram(family);
        }

        return families;
    }

    private static string FamilyOf(string sampleName, Dictionary<string, Family> families)
    {
        foreach (var suffix in new[] { "_bucket", "_sum", "_count" })
        {
            if (sampleName.EndsWith(suffix, StringComparison.Ordinal) && families.TryGetValue(sampleName[..^suffix.Length], out var f) && f.Type == "histogram")
            {
                return f.Name;
            }
        }

        return sampleName;
    }

    private static void CheckHistogram(Family family)
    {
        var buckets = family.Samples.Where(s => s.Name == family.Name + "_bucket").ToList();
        var count = family.Samples.Single(s => s.Name == family.Name + "_count").Value;
        _ = family.Samples.Single(s => s.Name == family.Name + "_sum");
        if (buckets.Count == 0 || buckets[^1].Labels["le"] != "+Inf")
        {
            throw new FormatException($"{family.Name}: the last bucket must be le=\"+Inf\"");
        }

        for (var i = 1; i < buckets.Count; i++)
        {
            var le0 = Le(buckets[i - 1]);
            var le1 = Le(buckets[i]);
            if (!(le1 > le0) || buckets[i].Value < buckets[i - 1].Value)
            {
                throw new FormatException($"{family.Name}: buckets must have increasing le and cumulative counts");
            }
        }

        if (buckets[^1].Value != count)
        {
            throw new FormatException($"{family.Name}: +Inf bucket {buckets[^1].Value} is not _count {count}");
        }

        static double Le(Sample s) => s.Labels["le"] == "+Inf" ? double.PositiveInfinity : double.Parse(s.Labels["le"], CultureInfo.InvariantCulture);
    }

    private static string Unescape(string value, bool allowQuote, Func<string> where)
    {
        var sb = new StringBuilder();
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (c == '\\')
            {
                if (i + 1 >= value.Length)
                {
                    throw new FormatException($"{where()}: dangling backslash");
                }

                var next = value[++i];
                sb.Append(next switch
                {
                    '\\' => '\\',
                    'n' => '\n',
                    '"' when allowQuote => '"',
                    _ => throw new FormatException($"{where()}: bad escape \\{next}"),
                });
            }
            else if (c == '\n' || (allowQuote && c == '"'))
            {
                throw new FormatException($"{where()}: unescaped {(c == '"' ? "quote" : "line feed")}");
            }
            else
            {
                sb.Append(c);
            }
        }

        return sb.ToString();
    }

    /// <summary>The value of the one sample of <paramref name="name"/> with exactly these labels.</summary>
    public static double Value(this Dictionary<string, Family> families, string name, params (string Key, string Value)[] labels)
    {
        var family = families[FamilyOf(name, families)];
        return family.Samples.Single(s => s.Name == name && s.Labels.Count == labels.Length && labels.All(l => s.Labels.TryGetValue(l.Key, out var v) && v == l.Value)).Value;
    }

    /// <summary>The sum over the samples of <paramref name="name"/> that carry at least these labels (0 when none does), like PromQL's <c>sum(name{…})</c>.</summary>
    public static double Sum(this Dictionary<string, Family> families, string name, params (string Key, string Value)[] labels)
    {
        var family = families[FamilyOf(name, families)];
        return family.Samples.Where(s => s.Name == name && labels.All(l => s.Labels.TryGetValue(l.Key, out var v) && v == l.Value)).Sum(s => s.Value);
    }

    [GeneratedRegex("^[a-zA-Z_:][a-zA-Z0-9_:]*$")]
    private static partial Regex MetricName();

    [GeneratedRegex(@"^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?<labels>.*)\})? (?<value>\S+)$")]
    private static partial Regex SampleLine();

    [GeneratedRegex(@"(?<k>[a-zA-Z_][a-zA-Z0-9_]*)=""(?<v>(?:[^""\\]|\\.)*)""")]
    private static partial Regex LabelPair();
}
