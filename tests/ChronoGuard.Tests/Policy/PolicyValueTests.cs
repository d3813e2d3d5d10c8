using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using ChronoGuard.Policy;
using ChronoGuard.Sidecar.Cli;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Policy;

/// <summary>
/// Every value of a policy is checked before use: a full policy is taken apart node by node and
/// each node (object member or array element) in turn is replaced by null, then by a value of the
/// wrong type. Each load must end in an outcome (never an exception), and every rejection is one
/// line naming the file, the JSON path and the problem in plain words.
/// </summary>
public sealed class PolicyValueTests
{
    private const string Full = """
        {
          "version": 1, "mode": "enforce", "defaultAction": "deny",
          "network": { "allowPrivateDestinations": false, "allowedCidrs": ["10.1.0.0/16"], "allowedPorts": [443, 80], "requireSniMatch": true },
          "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "status": "active", "policies": ["team"] } ],
          "policies": [
            { "name": "org", "priority": 500, "blockedDomains": ["*.pastebin.com"] },
            { "name": "team", "priority": 100, "extends": ["org"],
              "allowedDomains": ["api.example.com", "*.github.com"], "blockedDomains": ["gist.github.com"],
              "timeRestrictions": { "timezone": "Europe/Berlin", "days": ["mon", "fri"], "ranges": [ { "start": "08:00", "end": "18:30" } ] },
              "rateLimits": { "requestsPerMinute": 600, "requestsPerHour": 20000, "requestsPerDay": 200000, "burst": 60 },
              "rateLimitScope": "agent_domain", "egressBytesPerDay": 1073741824, "maxNewDomainsPerHour": 200,
              "rules": [
                { "name": "no-uploads", "priority": 10, "action": "deny",
                  "when": [ { "field": "method", "op": "in", "value": ["POST", "PUT"] },
                            { "field": "domain", "op": "ends_with", "value": ".blob.core.windows.net" },
                            { "field": "port", "op": "gt", "value": 1 } ] }
              ] }
          ],
          "grants": [ { "agent": "bot", "domains": ["status.example.org"], "expires": "2026-11-23T18:00:00Z", "reason": "INC-4711" } ]
        }
        """;

    private static readonly string[] Jargon = ["System.", "Int32", "Int64", "String", "JsonValueKind", "BytePosition", "LineNumber", "Exception", "SR.", "RegexOptions", "Nullable"];

    [Fact]
    public void The_full_policy_compiles()
    {
        using var dir = new TempDir();
        var outcome = Load(dir, JsonNode.Parse(Full)!);
        Assert.True(outcome.Ok, outcome.Error);
    }

    [Fact]
    public void Null_at_every_node_is_a_one_line_error_naming_that_node()
    {
        using var dir = new TempDir();
        var paths = Nodes(JsonNode.Parse(Full)!).ToList();
        Assert.True(paths.Count > 60, $"only {paths.Count} nodes: the walk would not cover the document");
        foreach (var path in paths)
        {
            var doc = JsonNode.Parse(Full)!;
            Replace(doc, path, null);
            var outcome = Load(dir, doc);
            Assert.False(outcome.Ok, $"null at {path} was accepted");
            AssertPlainLine(dir, outcome.Error!, path);
            Assert.Contains($": {path}: ", outcome.Error, StringComparison.Ordinal);

            // The line and column point at the very null (the file is one line: the column is its index + 1).
            var column = int.Parse(Regex.Match(outcome.Error!, @"^[^:]+: line 1, column (\d+): ").Groups[1].Value, CultureInfo.InvariantCulture);
            Assert.StartsWith("null", File.ReadAllText(dir.File("policy.json"))[(column - 1)..], StringComparison.Ordinal);
        }
    }

    [Fact]
    public void A_wrong_typed_value_at_every_node_never_crashes_and_is_said_plainly()
    {
        using var dir = new TempDir();
        var rejected = 0;
        var total = 0;
        foreach (var path in Nodes(JsonNode.Parse(Full)!))
        {
            foreach (var wrong in WrongValues(path))
            {
                var doc = JsonNode.Parse(Full)!;
                var kind = Find(doc, path)?.GetValueKind();
                if (wrong?.GetValueKind() == kind)
                {
                    continue;
                }

                Replace(doc, path, wrong);
                total++;
                var outcome = Load(dir, doc);
                if (!outcome.Ok)
                {
                    rejected++;
                    AssertPlainLine(dir, outcome.Error!, path);
                }
            }
        }

        // A few swaps are legitimate (a number where a condition takes a string); nearly all are not.
        Assert.True(rejected > total * 9 / 10, $"{rejected} of {total} wrong-typed values rejected");
    }

    [Theory]
    [InlineData("""{ "version": 1, "policies": [ { "name": "a", "extends": [null] } ] }""", "$.policies[0].extends[0]: is null")]
    [InlineData("""{ "version": 1, "policies": [ { "name": "a", "allowedDomains": ["a.com", null] } ] }""", "$.policies[0].allowedDomains[1]: is null")]
    [InlineData("""{ "version": 1, "agents": [ null ] }""", "$.agents[0]: is null")]
    [InlineData("""{ "version": 1, "policies": [ { "name": "a", "rules": [ null ] } ] }""", "$.policies[0].rules[0]: is null")]
    [InlineData("""{ "version": 1, "policies": [ { "name": "a", "rules": [ { "action": "deny", "when": [ { "field": "path", "op": "in", "value": [null] } ] } ] } ] }""", "$.policies[0].rules[0].when[0].value[0]: must be a string or a number, not null")]
    [InlineData("""{ "version": "1" }""", "$.version: must be a whole number, not a string")]
    [InlineData("""{ "version": 1, "network": { "allowedPorts": [70000] } }""", "$.network.allowedPorts[0]: 70000 is not a whole number from 1 to 65535")]
    [InlineData("""{ "version": 1, "network": { "allowedPorts": [443.5] } }""", "$.network.allowedPorts[0]: 443.5 is not a whole number")]
    [InlineData("""{ "version": 1, "version": 1 }""", "$: the key \"version\" appears twice")]
    [InlineData("""{ "version": 1, "policies": { } }""", "$.policies: must be an array, not an object")]
    [InlineData("""[ 1 ]""", "$: must be an object, not an array")]
    [InlineData("""{ "version": 1 """, "line 1, column 16: the file ends before every object and array is closed")]
    [InlineData("""{ "version": 1, "mode": 'x' }""", "line 1, column 25: not valid JSON: unexpected character '''")]
    [InlineData("", "the file is empty")]
    [InlineData("""{ "version": 1, "policies": [ [[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]] ] }""", "nested deeper than 16 levels")]
    [InlineData("""{ "version": 1, "grants": [ { "agent": "x", "domains": [], "expires": "soon" } ] }""", "$.grants[0].expires: \"soon\" is not an ISO-8601 time")]
    public void Each_shape_names_the_place_and_the_problem(string json, string expected)
    {
        using var dir = new TempDir();
        var path = dir.File("policy.json");
        File.WriteAllText(path, json);
        var outcome = PolicyLoader.TryLoad(path, new AgentRegistry(), 16);
        Assert.False(outcome.Ok);
        Assert.DoesNotContain("\n", outcome.Error!, StringComparison.Ordinal);
        Assert.StartsWith($"{path}: ", outcome.Error, StringComparison.Ordinal);
        Assert.Contains(expected, outcome.Error, StringComparison.Ordinal);
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(path))), outcome.Sha256);
    }

    [Fact]
    public void A_file_over_the_size_limit_is_refused_without_being_parsed()
    {
        using var dir = new TempDir();
        var path = dir.File("policy.json");
        using (var f = File.Create(path))
        {
            f.SetLength(PolicyLoader.MaxFileBytes + 1);
        }

        var outcome = PolicyLoader.TryLoad(path, new AgentRegistry(), 16);
        Assert.Equal($"{path}: $: the file is larger than {PolicyLoader.MaxFileBytes} bytes", outcome.Error);
    }

    [Fact]
    public void Policy_check_exits_1_with_one_line_for_a_null_element()
    {
        using var dir = new TempDir();
        var file = dir.File("bad.json");
        File.WriteAllText(file, """{ "version": 1, "policies": [ { "name": "a", "extends": [null] } ] }""");
        var stderr = new StringWriter();
        Assert.Equal(1, PolicyCommand.Run(["check", file], TextWriter.Null, stderr));
        Assert.Equal($"{file}: line 1, column 58: $.policies[0].extends[0]: is null; write a string or leave the key out", stderr.ToString().TrimEnd());
    }

    [Fact]
    public void A_rejected_reload_keeps_the_old_policy_and_hashes_the_rejected_bytes()
    {
        using var dir = new TempDir();
        var file = dir.File("policy.json");
        File.WriteAllText(file, """{ "version": 1, "policies": [ { "name": "a" } ] }""");
        var engine = new PolicyEngine(file, 16, TimeProvider.System);
        Assert.True(engine.Reload().Ok);
        var before = engine.Current;

        var bad = """{ "version": 1, "policies": [ { "name": "a", "blockedDomains": [null] } ] }"""u8.ToArray();
        File.WriteAllBytes(file, bad);
        var outcome = engine.Reload();
        Assert.False(outcome.Ok);
        Assert.Same(before, engine.Current);
        Assert.Equal(1, engine.Version);
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bad)), outcome.Sha256);
        Assert.Contains("$.policies[0].blockedDomains[0]: is null", outcome.Error, StringComparison.Ordinal);
    }

    private static PolicyLoadOutcome Load(TempDir dir, JsonNode doc)
    {
        var path = dir.File("policy.json");
        File.WriteAllText(path, doc.ToJsonString().Replace("$TOKEN", PolicyFixture.TokenSha, StringComparison.Ordinal));
        return PolicyLoader.TryLoad(path, new AgentRegistry(), 16);
    }

    private static void AssertPlainLine(TempDir dir, string error, string path)
    {
        Assert.StartsWith(dir.File("policy.json") + ": ", error, StringComparison.Ordinal);
        Assert.Matches(@"^[^:]+: (line \d+, column \d+: )?\$", error);
        Assert.DoesNotContain('\n', error);
        foreach (var word in Jargon)
        {
            Assert.False(error.Contains(word, StringComparison.Ordinal), $"{path}: \"{error}\" says {word}");
        }
    }

    /// <summary>The path of every object member and array element, depth first.</summary>
    private static IEnumerable<string> Nodes(JsonNode node)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var (_, child) in o)
                {
                    yield return child!.GetPath();
                    foreach (var p in Nodes(child))
                    {
                        yield return p;
                    }
                }

                break;
            case JsonArray a:
                foreach (var child in a)
                {
                    yield return child!.GetPath();
                    foreach (var p in Nodes(child))
                    {
                        yield return p;
                    }
                }

                break;
        }
    }

    private static IEnumerable<JsonNode?> WrongValues(string path)
    {
        _ = path;
        yield return JsonValue.Create(7);
        yield return JsonValue.Create("x");
        yield return JsonValue.Create(true);
        yield return new JsonObject();
        yield return new JsonArray();
        yield return JsonValue.Create(1.5);
    }

    private static JsonNode? Find(JsonNode root, string path) =>
        Nodes(root).Contains(path) ? FindIn(root, path) : null;

    private static JsonNode? FindIn(JsonNode node, string path)
    {
        if (node.GetPath() == path)
        {
            return node;
        }

        var children = node switch
        {
            JsonObject o => o.Select(kv => kv.Value),
            JsonArray a => a.AsEnumerable(),
            _ => [],
        };
        foreach (var c in children)
        {
            if (c is not null && FindIn(c, path) is { } hit)
            {
                return hit;
            }
        }

        return null;
    }

    private static void Replace(JsonNode root, string path, JsonNode? value)
    {
        var node = FindIn(root, path)!;
        switch (node.Parent)
        {
            case JsonObject o:
                o[node.GetPropertyName()] = value;
                break;
            case JsonArray a:
                a[node.GetElementIndex()] = value;
                break;
        }
    }
}
