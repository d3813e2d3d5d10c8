using System.Text;
using System.Text.Json;

namespace ChronoGuard;

/// <summary>
/// A JSON syntax error in words we compose from the bytes and the position the parser gives: under
/// NativeAOT the runtime's own messages are resource keys (UseSystemResourceKeys), never fit to show.
/// </summary>
internal static class JsonSyntax
{
    public const string Empty = "the file is empty";

    /// <summary>"line L, column C" (column in characters, both from 1), or null when the parser gave no position.</summary>
    public static string? Position(ReadOnlySpan<byte> utf8, JsonException ex)
    {
        if (ex.LineNumber is not { } line)
        {
            return null;
        }

        var start = LineStart(utf8, line);
        var bytes = (int)Math.Min(ex.BytePositionInLine ?? 0, utf8.Length - start);
        var column = Encoding.UTF8.GetCharCount(utf8.Slice(start, Math.Max(0, bytes))) + 1;
        return $"line {line + 1}, column {column}";
    }

    /// <summary>What is wrong at the parser's position, in plain words.</summary>
    public static string Problem(ReadOnlySpan<byte> utf8, JsonException ex, int maxDepth)
    {
        var at = ex.LineNumber is { } line ? (int)Math.Min(utf8.Length, LineStart(utf8, line) + (ex.BytePositionInLine ?? 0)) : utf8.Length;
        var (depth, inString, anything) = Scan(utf8[..at]);
        if (!anything && utf8[at..].Trim(" \t\r\n"u8).IsEmpty)
        {
            return Empty;
        }

        if (utf8[at..].Trim(" \t\r\n"u8).IsEmpty)
        {
            return inString ? "the file ends inside a string" : "the file ends before every object and array is closed";
        }

        var b = utf8[at];
        if (!inString && b is (byte)'{' or (byte)'[' && depth >= maxDepth)
        {
            return $"nested deeper than {maxDepth} levels";
        }

        if (b < 0x20 || b == 0x7F)
        {
            return $"not valid JSON: unexpected control character 0x{b:X2}{(inString ? " in a string" : string.Empty)}";
        }

        if (b < 0x80)
        {
            return $"not valid JSON: unexpected character '{(char)b}'{(inString ? " in a string" : string.Empty)}";
        }

        return Rune.DecodeFromUtf8(utf8[at..], out var rune, out _) == System.Buffers.OperationStatus.Done
            ? $"not valid JSON: unexpected character '{rune}' (U+{rune.Value:X4})"
            : "not valid JSON: the bytes there are not UTF-8 text";
    }

    private static int LineStart(ReadOnlySpan<byte> utf8, long line)
    {
        var start = 0;
        for (long l = 0; l < line && start < utf8.Length; l++)
        {
            var next = utf8[start..].IndexOf((byte)'\n');
            start = next < 0 ? utf8.Length : start + next + 1;
        }

        return start;
    }

    /// <summary>Nesting depth and whether the position is inside a string; comments are skipped as the parsers allow them.</summary>
    private static (int Depth, bool InString, bool Anything) Scan(ReadOnlySpan<byte> utf8)
    {
        var depth = 0;
        var inString = false;
        var anything = false;
        for (var i = 0; i < utf8.Length; i++)
        {
            var b = utf8[i];
            if (inString)
            {
                if (b == '\\')
                {
                    i++;
                }
                else if (b == '"')
                {
                    inString = false;
                }

                continue;
            }

            if (b == '/' && i + 1 < utf8.Length && utf8[i + 1] == '/')
            {
                var end = utf8[i..].IndexOf((byte)'\n');
                i = end < 0 ? utf8.Length : i + end;
                continue;
            }

            if (b == '/' && i + 1 < utf8.Length && utf8[i + 1] == '*')
            {
                var end = utf8[(i + 2)..].IndexOf("*/"u8);
                i = end < 0 ? utf8.Length : i + 2 + end + 1;
                continue;
            }

            anything |= b is not ((byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n');
            switch (b)
            {
                case (byte)'"': inString = true; break;
                case (byte)'{' or (byte)'[': depth++; break;
                case (byte)'}' or (byte)']': depth--; break;
            }
        }

        return (depth, inString, anything);
    }
}
