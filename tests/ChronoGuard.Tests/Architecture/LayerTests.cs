using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Architecture;

/// <summary>
/// The folders of src/ChronoGuard import each other only as the "Layers" table of docs/architecture.md
/// allows, and that table has no cycle: the document states the layering and this test holds the code to it.
/// </summary>
public sealed partial class LayerTests
{
    private static readonly string Source = Path.Combine(ExternalTools.RepoRoot, "src", "ChronoGuard");

    private static readonly string Architecture = Path.Combine(ExternalTools.RepoRoot, "docs", "architecture.md");

    [Fact]
    public void Every_folder_imports_only_what_the_layers_table_allows()
    {
        var allowed = LayersTable();
        var folders = Folders();
        var types = TypeFolders();
        var violations = new List<string>();
        foreach (var file in SourceFiles())
        {
            var folder = FolderOfFile(file);
            foreach (var (imported, evidence) in SourceScan.Imports(File.ReadAllText(file), folder, types, folders))
            {
                var ok = imported.Length == 0 || (folder.Length > 0 && allowed[folder].Contains(imported));
                if (!ok)
                {
                    violations.Add($"{Path.GetRelativePath(ExternalTools.RepoRoot, file)}: {Name(folder)} uses {Name(imported)} ({evidence}), which the Layers table of docs/architecture.md does not allow");
                }
            }
        }

        Assert.True(violations.Count == 0, string.Join('\n', violations));
    }

    [Fact]
    public void The_layers_table_names_every_folder_once_and_has_no_cycle()
    {
        var allowed = LayersTable();
        var folders = Folders().Where(f => f.Length > 0).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(folders, allowed.Keys.Order(StringComparer.Ordinal).ToArray());
        foreach (var imports in allowed.Values)
        {
            Assert.All(imports, i => Assert.Contains(i, folders));
        }

        // Kahn: repeatedly take a folder whose imports are all taken; what is left over lies on a cycle.
        var taken = new HashSet<string>(StringComparer.Ordinal);
        bool progress;
        do
        {
            progress = false;
            foreach (var (folder, imports) in allowed)
            {
                if (!taken.Contains(folder) && imports.All(taken.Contains))
                {
                    taken.Add(folder);
                    progress = true;
                }
            }
        }
        while (progress);

        Assert.True(taken.Count == allowed.Count, "the Layers table has a cycle among: " + string.Join(", ", allowed.Keys.Where(f => !taken.Contains(f))));
    }

    [Fact]
    public void Every_file_declares_the_namespace_of_its_folder()
    {
        foreach (var file in SourceFiles())
        {
            var folder = Path.GetRelativePath(Source, Path.GetDirectoryName(file)!);
            var expected = folder == "." ? "ChronoGuard" : "ChronoGuard." + folder.Replace(Path.DirectorySeparatorChar, '.');
            foreach (Match m in NamespaceDeclaration().Matches(SourceScan.Code(File.ReadAllText(file))))
            {
                Assert.True(m.Groups[1].Value == expected, $"{Path.GetRelativePath(ExternalTools.RepoRoot, file)}: namespace {m.Groups[1].Value}, expected {expected}");
            }
        }
    }

    /// <summary>No global using of ours: it would import a folder into every file without the file saying so.</summary>
    [Fact]
    public void No_folder_is_imported_by_a_global_using()
    {
        Assert.DoesNotContain("<Using Include=\"ChronoGuard", File.ReadAllText(Path.Combine(Source, "ChronoGuard.csproj")), StringComparison.Ordinal);
        foreach (var file in SourceFiles())
        {
            Assert.DoesNotMatch(GlobalUsing(), SourceScan.Code(File.ReadAllText(file)));
        }
    }

    /// <summary>The scan itself: each way of naming another folder's type counts; comments, strings and members do not.</summary>
    [Theory]
    [InlineData("using ChronoGuard.Stats;", "Stats")]
    [InlineData("using static global::ChronoGuard.Stats.DecisionSamples;", "Stats")]
    [InlineData("using M = ChronoGuard.Metrics.ProxyMetrics;", "Metrics")]
    [InlineData("var x = Metrics.AgentMetrics.Other;", "Metrics")]
    [InlineData("var x = new global::ChronoGuard.Proxy.ProxyServer();", "Proxy")]
    [InlineData("var s = $\"{Proxy.ProxyReasons.Drain} and {(a ? \"x\" : \"y\")}\";", "Proxy")]
    [InlineData("var s = @\"a \"\"quoted\"\" text\" + Proxy.ProxyReasons.Drain;", "Proxy")]
    [InlineData("var s = \"\"\"\n  ChronoGuard.Audit \" \n  \"\"\"; var t = new Net.Transport();", "Net")]
    [InlineData("// using ChronoGuard.Proxy;\nvar s = \"ChronoGuard.Proxy\"; var c = '\"'; /* ChronoGuard.Audit */ var d = decision.Policy.Reasons;", "")]
    [InlineData("public AuditKind Decision { get; } var n = Policy.Agents.Length;", "")]
    public void The_scan_finds_every_way_of_naming_another_folder_and_nothing_else(string code, string expected)
    {
        var folders = Folders();
        folders.Add("Metrics");
        var types = new Dictionary<string, string[]>(TypeFolders(), StringComparer.Ordinal)
        {
            ["AgentMetrics"] = ["Metrics"],
            ["ProxyMetrics"] = ["Metrics"],
        };

        var found = SourceScan.Imports(code, "Analytics", types, folders);

        string[] want = expected.Length == 0 ? [] : [expected];
        Assert.Equal(want, found.Keys.ToArray());
    }

    /// <summary>Folder → the folders it may import, from the "Layers" table of docs/architecture.md (backticked names, "Net/").</summary>
    private static Dictionary<string, HashSet<string>> LayersTable()
    {
        var text = File.ReadAllText(Architecture);
        var start = text.IndexOf("\n## Layers", StringComparison.Ordinal);
        Assert.True(start >= 0, "docs/architecture.md has no '## Layers' section");
        var end = text.IndexOf("\n## ", start + 1, StringComparison.Ordinal);
        var section = end < 0 ? text[start..] : text[start..end];
        var table = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var line in section.Split('\n'))
        {
            var cells = line.Trim().Trim('|').Split('|');
            if (!line.StartsWith('|') || cells.Length != 2)
            {
                continue;
            }

            var folder = Backticked().Matches(cells[0]).Select(m => m.Groups[1].Value).SingleOrDefault();
            if (folder is null)
            {
                continue; // the header and separator rows
            }

            Assert.True(table.TryAdd(folder, [.. Backticked().Matches(cells[1]).Select(m => m.Groups[1].Value)]), $"docs/architecture.md Layers: {folder}/ has two rows");
        }

        return table;
    }

    private static HashSet<string> Folders()
    {
        var folders = new HashSet<string>(StringComparer.Ordinal) { string.Empty };
        foreach (var dir in Directory.EnumerateDirectories(Source))
        {
            var name = Path.GetFileName(dir);
            if (name is not ("bin" or "obj"))
            {
                folders.Add(name);
            }
        }

        return folders;
    }

    private static IEnumerable<string> SourceFiles() =>
        Directory.EnumerateFiles(Source, "*.cs", SearchOption.AllDirectories)
            .Where(f => FolderOfFile(f) is not ("bin" or "obj"));

    private static string FolderOfFile(string file)
    {
        var relative = Path.GetRelativePath(Source, file);
        var slash = relative.IndexOf(Path.DirectorySeparatorChar, StringComparison.Ordinal);
        return slash < 0 ? string.Empty : relative[..slash];
    }

    /// <summary>Simple name (without generic arity) → the folders declaring a top-level type of that name.</summary>
    private static Dictionary<string, string[]> TypeFolders() =>
        typeof(IoErrors).Assembly.GetTypes()
            .Where(t => !t.IsNested && !t.IsDefined(typeof(CompilerGeneratedAttribute), false) && !t.Name.Contains('<', StringComparison.Ordinal))
            .Select(t => (Name: t.Name.Split('`')[0], Folder: SourceScan.FolderOf(t.Namespace)))
            .Where(t => t.Folder is not null)
            .GroupBy(t => t.Name, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Select(t => t.Folder!).Distinct().ToArray(), StringComparer.Ordinal);

    private static string Name(string folder) => folder.Length == 0 ? "the root namespace" : folder + "/";

    [GeneratedRegex(@"`([A-Za-z]+)/`")]
    private static partial Regex Backticked();

    [GeneratedRegex(@"\bglobal\s+using\b[^;]*\bChronoGuard\b")]
    private static partial Regex GlobalUsing();

    [GeneratedRegex(@"\bnamespace\s+([\w.]+)")]
    private static partial Regex NamespaceDeclaration();
}
