using System.Text.Json;

namespace ChronoGuard.Sidecar.Hosting;

/// <summary>
/// Reads the configuration file once before the configuration system does, so that an unreadable file,
/// a syntax error (with its line, like the policy's) or a key given twice is one line in our words: the
/// JSON provider's own messages are resource keys under NativeAOT ("Error_FailedToLoad … (Error_JSONParseError)").
/// </summary>
internal static class ConfigurationFile
{
    /// <summary>Deep enough for every setting (Logging:Console:LogLevel:Default is 4 levels).</summary>
    private const int MaxDepth = 64;

    /// <returns>One line naming the file and the problem, or null when the provider will read it.</returns>
    public static string? Check(string file)
    {
        if (Directory.Exists(file))
        {
            return $"{file}: is a directory, not a config file";
        }

        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(file);
        }
        catch (Exception ex) when (IoErrors.IsIo(ex))
        {
            return $"{file}: cannot read the config file: {IoErrors.Problem(ex, file)}";
        }

        ReadOnlySpan<byte> utf8 = bytes;
        if (utf8.StartsWith("\uFEFF"u8))
        {
            utf8 = utf8[3..];
        }

        // The options Microsoft.Extensions.Configuration.Json reads with.
        var options = new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true, MaxDepth = MaxDepth };
        var reader = new Utf8JsonReader(utf8, options);
        var keys = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var path = new List<string>();
        try
        {
            if (!reader.Read())
            {
                return $"{file}: the file is empty (give {{ }} for no settings)";
            }

            if (reader.TokenType != JsonTokenType.StartObject)
            {
                return $"{file}: line 1: must be a JSON object of settings";
            }

            return Object(ref reader, utf8, file, path, keys);
        }
        catch (JsonException ex)
        {
            var problem = JsonSyntax.Problem(utf8, ex, MaxDepth);
            return problem == JsonSyntax.Empty ? $"{file}: the file is empty (give {{ }} for no settings)" : $"{file}: {JsonSyntax.Position(utf8, ex) ?? "line 1"}: {problem}";
        }
    }

    /// <summary>Walks one object (the reader on its StartObject); a leaf key given twice, in any case, is the provider's error.</summary>
    private static string? Object(ref Utf8JsonReader reader, ReadOnlySpan<byte> utf8, string file, List<string> path, HashSet<string> keys)
    {
        while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
        {
            path.Add(reader.GetString()!);
            var line = Line(utf8, reader.TokenStartIndex);
            reader.Read();
            if (Value(ref reader, utf8, file, path, keys, line) is { } error)
            {
                return error;
            }

            path.RemoveAt(path.Count - 1);
        }

        return null;
    }

    private static string? Value(ref Utf8JsonReader reader, ReadOnlySpan<byte> utf8, string file, List<string> path, HashSet<string> keys, string line)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.StartObject:
                return Object(ref reader, utf8, file, path, keys);
            case JsonTokenType.StartArray:
                for (var i = 0; reader.Read() && reader.TokenType != JsonTokenType.EndArray; i++)
                {
                    path.Add(i.ToString(System.Globalization.CultureInfo.InvariantCulture));
                    var error = Value(ref reader, utf8, file, path, keys, Line(utf8, reader.TokenStartIndex));
                    path.RemoveAt(path.Count - 1);
                    if (error is not null)
                    {
                        return error;
                    }
                }

                return null;
            default:
                var key = string.Join(':', path);
                return keys.Add(key) ? null : $"{file}: {line}: {key} is given twice (keys ignore case)";
        }
    }

    /// <summary>"line N" of a token (the reader counts lines only for its exceptions).</summary>
    private static string Line(ReadOnlySpan<byte> utf8, long tokenStart) =>
        $"line {utf8[..(int)tokenStart].Count((byte)'\n') + 1}";
}
