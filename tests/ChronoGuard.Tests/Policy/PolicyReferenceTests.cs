using System.Globalization;
using System.Text.RegularExpressions;
using ChronoGuard.Policy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Policy;

/// <summary>
/// docs/policy.md is the users' policy reference (issue 19: the README pointed at a contract users do
/// not have). It drifts silently when the reader learns a key, so these tests read PolicyReader.cs as
/// text: every object it reads (each method with <c>case "key":</c> labels) has a key table in the
/// reference, marked <c>&lt;!-- reader-keys: Method --&gt;</c>, naming exactly the keys it accepts; the
/// limits table states the compiler's constants; the worked example loads.
/// </summary>
public sealed partial class PolicyReferenceTests
{
    private static readonly string ReaderSource = Path.Combine(ExternalTools.RepoRoot, "src", "ChronoGuard", "Policy", "PolicyReader.cs");

    private static readonly string Reference = Path.Combine(ExternalTools.RepoRoot, "docs", "policy.md");

    [Fact]
    public void Each_object_the_reader_reads_has_a_key_table_naming_exactly_the_keys_it_accepts()
    {
        var reader = ReaderKeys(File.ReadAllText(ReaderSource));
        var documented = DocumentedKeys(File.ReadAllLines(Reference));

        // The parse of the reader itself must have worked, or an empty comparison would pass.
        Assert.True(reader.Count >= 11, $"found only {reader.Count} objects in PolicyReader.cs: {string.Join(", ", reader.Keys)}");
        Assert.Contains("version", reader["Document"]);
        Assert.Contains("ignoreCase", reader["Condition"]);

        var problems = new List<string>();
        foreach (var (method, keys) in reader)
        {
            if (!documented.TryGetValue(method, out var table))
            {
                problems.Add($"docs/policy.md has no key table for PolicyReader.{method} (<!-- reader-keys: {method} -->); it accepts {string.Join(", ", keys)}");
                continue;
            }

            problems.AddRange(keys.Except(table).Select(k => $"PolicyReader.{method} accepts \"{k}\", which its table in docs/policy.md does not name"));
            problems.AddRange(table.Except(keys).Select(k => $"docs/policy.md's table for PolicyReader.{method} names `{k}`, which the reader refuses there"));
        }

        problems.AddRange(documented.Keys.Except(reader.Keys).Select(m => $"docs/policy.md marks a table for PolicyReader.{m}, which reads no keys"));
        Assert.True(problems.Count == 0, string.Join(Environment.NewLine, problems));
    }

    [Fact]
    public void Every_key_table_in_the_reference_is_one_the_reader_check_covers()
    {
        var lines = File.ReadAllLines(Reference);
        for (var i = 0; i < lines.Length; i++)
        {
            if (lines[i].StartsWith("| key |", StringComparison.Ordinal))
            {
                Assert.True(i > 0 && MarkerPattern().IsMatch(lines[i - 1]), $"docs/policy.md line {i + 1}: a key table without a <!-- reader-keys: ... --> line above it, so no test checks it");
            }
        }
    }

    [Fact]
    public void The_limits_table_states_what_the_loader_and_compiler_enforce()
    {
        var limits = Table(File.ReadAllLines(Reference), "## Limits");
        var expected = new Dictionary<string, long>
        {
            ["file size"] = PolicyLoader.MaxFileBytes / (1024 * 1024),
            ["nesting"] = PolicyReader.MaxDepth,
            ["agents"] = PolicyCompiler.MaxAgents,
            ["policies per agent"] = PolicyCompiler.MaxPoliciesPerAgent,
            ["rules per policy"] = PolicyCompiler.MaxRulesPerPolicy,
            ["conditions per rule"] = PolicyCompiler.MaxConditionsPerRule,
            ["time ranges per window"] = PolicyCompiler.MaxTimeRanges,
            ["entries per domain list"] = PolicyCompiler.MaxDomainsPerList,
            ["patterns one host can match"] = PolicyCompiler.MaxMatchesPerHost,
            ["policies and rules inherited through `extends`, summed over the policies agents name"] = PolicyCompiler.MaxInheritedEntries,
            ["`regex` pattern"] = PolicyCompiler.MaxRegexLength,
            ["credentials"] = PolicyCompiler.MaxCredentials,
        };

        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), limits.Keys.Order(StringComparer.Ordinal));
        foreach (var (what, value) in expected)
        {
            var digits = LeadingNumber().Match(limits[what]).Value.Replace(",", string.Empty, StringComparison.Ordinal);
            Assert.True(long.Parse(digits, CultureInfo.InvariantCulture) == value, $"docs/policy.md says {what}: {limits[what]}; the code says {value}");
        }
    }

    [Fact]
    public void The_worked_example_loads_and_decides_as_its_table_says()
    {
        var lines = File.ReadAllLines(Reference);
        var start = Array.IndexOf(lines, "## A worked example");
        Assert.True(start >= 0, "docs/policy.md has no worked example");
        var open = Array.IndexOf(lines, "```jsonc", start);
        var close = Array.IndexOf(lines, "```", open);
        Assert.True(open > start && close > open, "the worked example has no ```jsonc block");

        var policy = PolicyFixture.Compile(string.Join('\n', lines[(open + 1)..close]));
        var agent = Assert.Single(policy.Agents);
        Assert.Equal("research-bot", agent.Id);

        // A few rows of the example's table, decided by the compiled policy at a Tuesday 10:00 in Berlin.
        var tuesday = new DateTimeOffset(2026, 11, 17, 9, 0, 0, TimeSpan.Zero);
        Assert.Equal(Decision.Allow, Decide(policy, "api.openai.com", 443, tuesday).Decision);
        Assert.Equal(Decision.TimeRestricted, Decide(policy, "api.openai.com", 443, tuesday.AddDays(4)).Decision);
        Assert.Equal((Decision.Block, Reasons.DomainBlocked), Outcome(Decide(policy, "gist.github.com", 443, tuesday)));
        Assert.Equal(Decision.Allow, Decide(policy, "github.com", 22, tuesday).Decision);
        Assert.Equal((Decision.Block, Reasons.PortNotAllowed), Outcome(Decide(policy, "api.openai.com", 22, tuesday)));
        Assert.Equal((Decision.PolicyViolation, Reasons.RuleDeny), Outcome(Decide(policy, "x.blob.core.windows.net", 80, tuesday, "PUT", "/c/f")));
        Assert.Equal((Decision.Deny, Reasons.DefaultDeny), Outcome(Decide(policy, "x.blob.core.windows.net", 443, tuesday)));
        Assert.Equal((Decision.Allow, "grant:INC-4711"), Outcome(Decide(policy, "status.example.org", 443, tuesday.AddDays(4))));
        Assert.Equal((Decision.Deny, Reasons.DefaultDeny), Outcome(Decide(policy, "example.net", 443, tuesday)));
    }

    /// <summary>The examples of the reference's "Paths as rules see them", through the proxy's own normaliser.</summary>
    [Theory]
    [InlineData("/%73ecret", "/secret")]
    [InlineData("/%41dmin", "/Admin")]
    [InlineData("/a%3ab", "/a%3Ab")]
    [InlineData("//x///y", "/x/y")]
    [InlineData("/x/./y/../secret", "/x/secret")]
    [InlineData("/../../secret", "/secret")]
    [InlineData("/x/%2e%2e/secret", null)]
    [InlineData("/.%2E/secret", null)]
    [InlineData("/a%2Fb", null)]
    [InlineData("/a%5Cb", null)]
    [InlineData("/a\\b", null)]
    [InlineData("/a%00b", null)]
    [InlineData("/a%zz", null)]
    [InlineData("/a%", null)]
    public void The_path_examples_normalise_as_the_reference_says(string path, string? expected)
    {
        var bytes = System.Text.Encoding.ASCII.GetBytes(path);
        var into = new byte[bytes.Length];
        var error = ChronoGuard.Http.PathNormalizer.Normalize(bytes, into, dropParameters: false, out var written);
        if (expected is null)
        {
            Assert.Equal(ChronoGuard.Http.ParseError.BadPath, error);
        }
        else
        {
            Assert.Equal(ChronoGuard.Http.ParseError.None, error);
            Assert.Equal(expected, System.Text.Encoding.ASCII.GetString(into, 0, written));
        }
    }

    private static DecisionResult Decide(CompiledPolicy policy, string host, int port, DateTimeOffset at, string? method = null, string? path = null)
    {
        var facts = new RequestFacts(
            System.Text.Encoding.ASCII.GetBytes(host),
            port,
            System.Text.Encoding.ASCII.GetBytes(method ?? "CONNECT"),
            System.Text.Encoding.ASCII.GetBytes(path ?? string.Empty),
            default,
            null,
            isConnect: method is null);
        return policy.Decide(policy.Agents[0], facts, at, System.Diagnostics.Stopwatch.GetTimestamp());
    }

    private static (Decision, string) Outcome(DecisionResult r) => (r.Decision, r.Reason);

    /// <summary>Per reader method that reads an object (<c>Name(JsonElement e, string at)</c>), its <c>case "key":</c> labels.</summary>
    private static Dictionary<string, HashSet<string>> ReaderKeys(string source)
    {
        var methods = ReaderMethod().Matches(source);
        var result = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        for (var i = 0; i < methods.Count; i++)
        {
            var end = i + 1 < methods.Count ? methods[i + 1].Index : source.Length;
            var body = source[methods[i].Index..end];
            var keys = CaseLabel().Matches(body).Select(m => m.Groups[1].Value).ToHashSet(StringComparer.Ordinal);
            if (keys.Count > 0)
            {
                result.Add(methods[i].Groups[1].Value, keys);
            }
        }

        return result;
    }

    /// <summary>Per <c>&lt;!-- reader-keys: Method --&gt;</c> marker, the backticked key of each row of the table below it.</summary>
    private static Dictionary<string, HashSet<string>> DocumentedKeys(string[] lines)
    {
        var result = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        for (var i = 0; i < lines.Length; i++)
        {
            var marker = MarkerPattern().Match(lines[i]);
            if (!marker.Success)
            {
                continue;
            }

            var keys = new HashSet<string>(StringComparer.Ordinal);
            // The header and separator rows first, then one row per key.
            for (var row = i + 3; row < lines.Length && lines[row].StartsWith('|'); row++)
            {
                var cell = lines[row].Split('|')[1].Trim();
                var key = KeyCell().Match(cell);
                Assert.True(key.Success, $"docs/policy.md line {row + 1}: the first cell of a key table is one `key`, not {cell}");
                Assert.True(keys.Add(key.Groups[1].Value), $"docs/policy.md line {row + 1}: `{key.Groups[1].Value}` twice in one table");
            }

            Assert.True(result.TryAdd(marker.Groups[1].Value, keys), $"docs/policy.md: two tables for PolicyReader.{marker.Groups[1].Value}");
        }

        return result;
    }

    /// <summary>The two-column table under <paramref name="heading"/>, first cell to second.</summary>
    private static Dictionary<string, string> Table(string[] lines, string heading)
    {
        var at = Array.IndexOf(lines, heading);
        Assert.True(at >= 0, $"docs/policy.md has no {heading}");
        var first = Array.FindIndex(lines, at, l => l.StartsWith('|'));
        var table = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var row = first + 2; row < lines.Length && lines[row].StartsWith('|'); row++)
        {
            var cells = lines[row].Split('|');
            table.Add(cells[1].Trim(), cells[2].Trim());
        }

        return table;
    }

    [GeneratedRegex(@"private static \w+ (\w+)\(JsonElement e, string at\)")]
    private static partial Regex ReaderMethod();

    [GeneratedRegex(@"case ""(\w+)"":")]
    private static partial Regex CaseLabel();

    [GeneratedRegex(@"^<!-- reader-keys: (\w+) -->$")]
    private static partial Regex MarkerPattern();

    [GeneratedRegex(@"^`(\w+)`$")]
    private static partial Regex KeyCell();

    [GeneratedRegex(@"^[\d,]+")]
    private static partial Regex LeadingNumber();
}
