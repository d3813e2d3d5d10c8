using System.Text;
using System.Text.RegularExpressions;

namespace ChronoGuard.Tests.Architecture;

/// <summary>
/// Which folders of src/ChronoGuard a source file imports. C# can name a type of another folder only as
/// <c>ChronoGuard.X…</c> (a using, an alias, <c>using static</c>, a fully qualified name) or, from inside
/// <c>ChronoGuard.*</c>, as <c>X.T</c>; a bare <c>T</c> needs one of those usings. So the scan looks for
/// those two shapes in the code with comments and string text removed (global usings of ours are refused by
/// the caller). Constants and enum members are found too, which a scan of the compiled metadata would
/// miss: they are inlined.
/// </summary>
internal static partial class SourceScan
{
    /// <summary>Folder (layer) of a namespace: "" for the root namespace, else its first segment below ChronoGuard.</summary>
    public static string? FolderOf(string? ns)
    {
        if (ns == "ChronoGuard")
        {
            return string.Empty;
        }

        if (ns is null || !ns.StartsWith("ChronoGuard.", StringComparison.Ordinal))
        {
            return null;
        }

        var rest = ns["ChronoGuard.".Length..];
        var dot = rest.IndexOf('.', StringComparison.Ordinal);
        return dot < 0 ? rest : rest[..dot];
    }

    /// <summary>
    /// The folders <paramref name="source"/> imports, each with the text that shows it. <c>X.T</c> counts
    /// when <c>T</c> is a type declared in folder <c>X</c> and the <c>X</c> does not follow a dot (then it
    /// is a member: <c>decision.Policy.Rules</c>).
    /// </summary>
    public static Dictionary<string, string> Imports(string source, string ownFolder, IReadOnlyDictionary<string, string[]> typeFolders, IReadOnlySet<string> folders)
    {
        var code = Code(source);
        var found = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (Match m in Qualified().Matches(code))
        {
            var folder = m.Groups[1].Value;
            if (folders.Contains(folder) && folder != ownFolder)
            {
                found.TryAdd(folder, "ChronoGuard." + folder);
            }
        }

        foreach (Match m in Dotted().Matches(code))
        {
            var folder = m.Groups[1].Value;
            var type = m.Groups[2].Value;
            if (folder != ownFolder && folders.Contains(folder) && typeFolders.TryGetValue(type, out var declaredIn) && declaredIn.Contains(folder))
            {
                found.TryAdd(folder, folder + "." + type);
            }
        }

        return found;
    }

    /// <summary>The code of a C# file: comments and the text of string and character literals blanked, interpolation holes kept.</summary>
    public static string Code(string source)
    {
        var code = new StringBuilder(source.Length);
        var i = 0;
        while (i < source.Length)
        {
            i = Step(source, i, code);
        }

        return code.ToString();
    }

    /// <summary>Copies one unit of code at <paramref name="i"/> (a character, or a whole comment or literal) and returns where the next starts.</summary>
    private static int Step(string s, int i, StringBuilder code)
    {
        var c = s[i];
        if (c == '/' && At(s, i + 1) == '/')
        {
            var end = s.IndexOf('\n', i);
            return end < 0 ? s.Length : end;
        }

        if (c == '/' && At(s, i + 1) == '*')
        {
            var end = s.IndexOf("*/", i + 2, StringComparison.Ordinal);
            code.Append(' ');
            return end < 0 ? s.Length : end + 2;
        }

        if (c == '\'')
        {
            var j = i + 1;
            while (j < s.Length && s[j] != '\'')
            {
                j += s[j] == '\\' ? 2 : 1;
            }

            code.Append(' ');
            return j + 1;
        }

        // A string literal: any run of '$' and '@' before a quote, or a bare quote.
        var k = i;
        var dollars = 0;
        var verbatim = false;
        while (k < s.Length && (s[k] == '$' || s[k] == '@'))
        {
            dollars += s[k] == '$' ? 1 : 0;
            verbatim |= s[k] == '@';
            k++;
        }

        if (At(s, k) != '"')
        {
            code.Append(c);
            return i + 1;
        }

        code.Append(' ');
        var quotes = 0;
        while (At(s, k + quotes) == '"')
        {
            quotes++;
        }

        if (quotes >= 3)
        {
            // Raw string: its holes (if any) are dropped with the text; no source file names a type in one.
            var close = new string('"', quotes);
            var end = s.IndexOf(close, k + quotes, StringComparison.Ordinal);
            return end < 0 ? s.Length : end + quotes;
        }

        var j2 = k + 1;
        while (j2 < s.Length)
        {
            var d = s[j2];
            if (d == '"')
            {
                if (verbatim && At(s, j2 + 1) == '"')
                {
                    j2 += 2;
                    continue;
                }

                return j2 + 1;
            }

            if (d == '\\' && !verbatim)
            {
                j2 += 2;
                continue;
            }

            if (d == '{' && dollars > 0)
            {
                if (At(s, j2 + 1) == '{')
                {
                    j2 += 2;
                    continue;
                }

                // An interpolation hole is code: copy it (nested literals included) up to its closing brace.
                code.Append(' ');
                j2++;
                var depth = 0;
                while (j2 < s.Length && (s[j2] != '}' || depth > 0))
                {
                    depth += s[j2] == '{' ? 1 : s[j2] == '}' ? -1 : 0;
                    j2 = Step(s, j2, code);
                }

                code.Append(' ');
                j2++;
                continue;
            }

            j2++;
        }

        return s.Length;
    }

    private static char At(string s, int i) => i < s.Length ? s[i] : '\0';

    [GeneratedRegex(@"\bChronoGuard\s*\.\s*([A-Za-z_]\w*)")]
    private static partial Regex Qualified();

    [GeneratedRegex(@"(?<!\.\s*)(?<!\w)([A-Za-z_]\w*)\s*\.\s*([A-Za-z_]\w*)")]
    private static partial Regex Dotted();
}
