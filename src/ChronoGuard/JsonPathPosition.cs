using System.Text;
using System.Text.Json;

namespace ChronoGuard;

/// <summary>
/// Where a JSON path (<c>$.policies[0].extends[1]</c>) sits in a document, as "line L, column C", so a
/// problem found after parsing (an unknown policy name, a cycle) points at the line an editor opens.
/// A path that goes further than the document (a required key that is missing) points at the deepest
/// value it reached.
/// </summary>
internal static class JsonPathPosition
{
    /// <summary>"line L, column C" (both from 1, column in characters), or null for a path that is not a JSON path or a document that does not parse.</summary>
    public static string? Find(ReadOnlySpan<byte> utf8, string path)
    {
        if (utf8.StartsWith("\uFEFF"u8))
        {
            utf8 = utf8[3..];
        }

        if (!path.StartsWith('$') || Segments(path) is not { } segments)
        {
            return null;
        }

        try
        {
            var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true, MaxDepth = 64 });
            if (!reader.Read())
            {
                return null;
            }

            var at = reader.TokenStartIndex;
            foreach (var segment in segments)
            {
                if (!Step(ref reader, segment))
                {
                    break;
                }

                at = reader.TokenStartIndex;
            }

            return Describe(utf8, (int)at);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>Moves from the value the reader is on to its member or element <paramref name="segment"/>; false when there is none.</summary>
    private static bool Step(ref Utf8JsonReader reader, object segment)
    {
        if (segment is string name && reader.TokenType == JsonTokenType.StartObject)
        {
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var match = reader.ValueTextEquals(name);
                reader.Read();
                if (match)
                {
                    return true;
                }

                reader.Skip();
            }

            return false;
        }

        if (segment is int index && reader.TokenType == JsonTokenType.StartArray)
        {
            for (var i = 0; reader.Read() && reader.TokenType != JsonTokenType.EndArray; i++)
            {
                if (i == index)
                {
                    return true;
                }

                reader.Skip();
            }
        }

        return false;
    }

    /// <summary>"$.a[2].b" as "a", 2, "b"; null for anything else (names with dots or brackets are not written by our readers).</summary>
    private static List<object>? Segments(string path)
    {
        var segments = new List<object>();
        var i = 1;
        while (i < path.Length)
        {
            if (path[i] == '.')
            {
                var end = path.IndexOfAny(['.', '['], i + 1);
                end = end < 0 ? path.Length : end;
                if (end == i + 1)
                {
                    return null;
                }

                segments.Add(path[(i + 1)..end]);
                i = end;
            }
            else if (path[i] == '[')
            {
                var end = path.IndexOf(']', i);
                if (end < 0 || !int.TryParse(path.AsSpan(i + 1, end - i - 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var index))
                {
                    return null;
                }

                segments.Add(index);
                i = end + 1;
            }
            else
            {
                return null;
            }
        }

        return segments;
    }

    private static string Describe(ReadOnlySpan<byte> utf8, int offset)
    {
        var before = utf8[..Math.Min(offset, utf8.Length)];
        var lineStart = before.LastIndexOf((byte)'\n') + 1;
        var line = before.Count((byte)'\n') + 1;
        var column = Encoding.UTF8.GetCharCount(before[lineStart..]) + 1;
        return $"line {line}, column {column}";
    }
}
