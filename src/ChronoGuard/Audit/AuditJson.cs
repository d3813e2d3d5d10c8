using System.Globalization;
using System.Text;
using System.Text.Json;

namespace ChronoGuard.Audit;

/// <summary>
/// The JSONL and CSV forms of a record (written by hand with Utf8JsonWriter: no reflection), and the
/// strict parser a verifier needs: what a person or <c>grep</c> reads must be what was hashed, so a
/// duplicated key, an unknown key, a number that is not an integer, a value of the wrong type or a
/// <c>time</c> that does not render <c>ts</c> makes the line invalid (docs/audit-format.md).
/// </summary>
internal static class AuditJson
{
    /// <summary>The digits of a hash as exports write it.</summary>
    public static readonly System.Buffers.SearchValues<char> LowerHex = System.Buffers.SearchValues.Create("0123456789abcdef");

    /// <summary>The CSV header of format 1 exports (still accepted by <c>verify --csv</c>).</summary>
    public static readonly string[] ColumnsV1 =
        ["seq", "ts", "time", "kind", "agent", "sourceIp", "method", "host", "port", "path", "decision", "reason", "policy", "rule", "status", "connId", "bytesUp", "bytesDown", "durationMs", "prevHash", "hash"];

    /// <summary>The CSV header of format 2 exports (still accepted by <c>verify --csv</c>).</summary>
    public static readonly string[] ColumnsV2 = [.. ColumnsV1, "format", "dialedIp", "enforced", "identity"];

    /// <summary>The CSV header written now: format 1 rows leave the last five columns empty but format, format 2 rows the last.</summary>
    public static readonly string[] Columns = [.. ColumnsV2, "credential"];

    public static void Write(Utf8JsonWriter w, AuditEntry e)
    {
        w.WriteStartObject();
        w.WriteNumber("seq", e.Seq);
        w.WriteNumber("ts", e.TimestampNs);
        if (e.TimeText is { } time)
        {
            w.WriteString("time", time);
        }

        w.WriteString("kind", AuditEntry.KindName(e.Kind));
        w.WriteString("agent", e.Agent);
        w.WriteString("sourceIp", e.SourceIp);
        w.WriteString("method", e.Method);
        w.WriteString("host", e.Host);
        w.WriteNumber("port", e.Port);
        w.WriteString("path", e.Path);
        w.WriteString("decision", e.Decision);
        w.WriteString("reason", e.Reason);
        w.WriteString("policy", e.Policy);
        w.WriteString("rule", e.Rule);
        w.WriteNumber("status", e.Status);
        w.WriteNumber("connId", e.ConnectionId);
        w.WriteNumber("bytesUp", e.BytesUp);
        w.WriteNumber("bytesDown", e.BytesDown);
        w.WriteNumber("durationMs", e.DurationMs);
        if (e.Format != AuditCodec.FormatVersion1)
        {
            // Format 1 lines stay exactly as format 1 exports were; format 2 says so and adds its fields.
            w.WriteNumber("format", e.Format);
            w.WriteString("dialedIp", e.DialedIp);
            w.WriteBoolean("enforced", e.Enforced);
            w.WriteString("identity", AuditEntry.IdentityName(e.Identity));
            if (e.Format == AuditCodec.FormatVersion3)
            {
                w.WriteString("credential", e.Credential);
            }
        }

        w.WriteString("prevHash", Convert.ToHexStringLower(e.PrevHash));
        w.WriteString("hash", Convert.ToHexStringLower(e.Hash));
        w.WriteEndObject();
    }

    /// <summary>
    /// Parses one JSONL line strictly. On failure returns null with a plain-sentence problem; <paramref name="seq"/>
    /// is the line's seq when that much could be read, else -1.
    /// </summary>
    public static AuditEntry? Parse(string line, out string? problem, out long seq)
    {
        var values = new Dictionary<string, Value>(StringComparer.Ordinal);
        seq = -1;
        problem = ReadObject(Encoding.UTF8.GetBytes(line), values);
        if (values.TryGetValue("seq", out var s) && s.Kind == JsonTokenType.Number && s.Integer is { } n)
        {
            seq = n;
        }

        return problem is null ? Build(values, string.Empty, out problem) : null;
    }

    /// <summary>One CSV row under <paramref name="header"/> (<see cref="ColumnsV1"/> or <see cref="Columns"/>).</summary>
    public static AuditEntry? ParseCsv(IReadOnlyList<string> header, IReadOnlyList<string> cells, out string? problem, out long seq)
    {
        seq = -1;
        if (cells.Count != header.Count)
        {
            problem = $"the row has {cells.Count} cells, the header {header.Count}";
            return null;
        }

        var values = new Dictionary<string, Value>(StringComparer.Ordinal);
        var v2 = false;
        var v3 = false;
        string? quoteProblem = null;
        for (var i = 0; i < header.Count; i++)
        {
            var name = header[i];
            var cell = cells[i];
            if (name == "format")
            {
                v2 = cell != "1";
                v3 = cell == "3";
            }

            if (name == "time" && cell.Length == 0)
            {
                // An export leaves time empty only when ts has no calendar rendering (checked in Build).
                continue;
            }

            if (Array.IndexOf(FormulaEscaped, name) >= 0 && cell.StartsWith('\''))
            {
                // Csv put exactly one quote before a cell a spreadsheet would run, or before a genuine
                // leading quote; anything else is a quote the export never writes.
                if (cell.Length < 2 || cell.AsSpan(1, 1).IndexOfAny(FormulaStarts) < 0)
                {
                    quoteProblem ??= $"column {name} begins with ' that an export does not write (only before =, +, -, @, tab, CR or ')";
                }

                cell = cell[1..];
            }

            values[name] = Schema.TryGetValue(name, out var type) && type is FieldType.Int32 or FieldType.Int64
                ? new Value(JsonTokenType.Number, cell, ParseInteger(cell))
                : new Value(JsonTokenType.String, cell, null);
        }

        if (values.TryGetValue("seq", out var s) && s.Integer is { } n)
        {
            seq = n;
        }

        if (quoteProblem is not null)
        {
            problem = quoteProblem;
            return null;
        }

        if (!v3 && values.Remove("credential", out var credential) && credential.Text.Length != 0)
        {
            problem = "column credential is set on a row of format 1 or 2";
            return null;
        }

        if (!v2)
        {
            // A format 1 row under the format 2 header: the format 2 cells must be empty.
            foreach (var name in (string[])["dialedIp", "enforced", "identity"])
            {
                if (values.Remove(name, out var extra) && extra.Text.Length != 0)
                {
                    problem = $"column {name} is set on a format 1 row";
                    return null;
                }
            }
        }
        else if (values.TryGetValue("enforced", out var enforced))
        {
            values["enforced"] = enforced.Text switch
            {
                "true" => new Value(JsonTokenType.True, enforced.Text, null),
                "false" => new Value(JsonTokenType.False, enforced.Text, null),
                _ => new Value(JsonTokenType.String, enforced.Text, null),
            };
        }

        if (values.TryGetValue("format", out var format) && format.Text == "1")
        {
            values.Remove("format");
        }

        return Build(values, "column ", out problem);
    }

    /// <summary>
    /// The text columns an agent or client can fill. A cell of theirs that begins with one of
    /// <see cref="FormulaStarts"/> is written with a leading <c>'</c> (SPEC §5: a spreadsheet must never
    /// run what an agent put in a header); the quote itself is in the set, so a genuine leading quote is
    /// doubled and <see cref="ParseCsv"/> strips exactly one, which makes the round trip exact.
    /// </summary>
    private static readonly string[] FormulaEscaped = ["agent", "sourceIp", "method", "host", "path", "decision", "reason", "policy", "rule", "dialedIp", "credential"];

    private static readonly System.Buffers.SearchValues<char> FormulaStarts = System.Buffers.SearchValues.Create("=+-@\t\r'");

    public static string Csv(AuditEntry e)
    {
        static string Q(string s)
        {
            if (s.Length > 0 && FormulaStarts.Contains(s[0]))
            {
                s = "'" + s;
            }

            return s.AsSpan().IndexOfAny(",\"\r\n") >= 0 ? "\"" + s.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : s;
        }

        var i = CultureInfo.InvariantCulture;
        var v1 = e.Format == AuditCodec.FormatVersion1;
        return string.Join(',',
            e.Seq.ToString(i), e.TimestampNs.ToString(i), e.TimeText ?? string.Empty, AuditEntry.KindName(e.Kind),
            Q(e.Agent), Q(e.SourceIp), Q(e.Method), Q(e.Host), e.Port.ToString(i), Q(e.Path), Q(e.Decision), Q(e.Reason), Q(e.Policy), Q(e.Rule),
            e.Status.ToString(i), e.ConnectionId.ToString(i), e.BytesUp.ToString(i), e.BytesDown.ToString(i), e.DurationMs.ToString(i),
            Convert.ToHexStringLower(e.PrevHash), Convert.ToHexStringLower(e.Hash),
            e.Format.ToString(i), v1 ? string.Empty : Q(e.DialedIp), v1 ? string.Empty : e.Enforced ? "true" : "false", v1 ? string.Empty : AuditEntry.IdentityName(e.Identity),
            e.Format == AuditCodec.FormatVersion3 ? Q(e.Credential) : string.Empty);
    }

    /// <summary>Splits one CSV row (RFC 4180 quoting; a quoted cell may hold a line break, see AuditReader.ReadCsv).</summary>
    public static List<string>? SplitCsv(string line)
    {
        var cells = new List<string>();
        var cell = new StringBuilder();
        var i = 0;
        while (true)
        {
            cell.Clear();
            if (i < line.Length && line[i] == '"')
            {
                i++;
                while (true)
                {
                    if (i >= line.Length)
                    {
                        return null;
                    }

                    if (line[i] == '"')
                    {
                        if (i + 1 < line.Length && line[i + 1] == '"')
                        {
                            cell.Append('"');
                            i += 2;
                            continue;
                        }

                        i++;
                        break;
                    }

                    cell.Append(line[i++]);
                }

                if (i < line.Length && line[i] != ',')
                {
                    return null;
                }
            }
            else
            {
                while (i < line.Length && line[i] != ',')
                {
                    if (line[i] == '"')
                    {
                        return null;
                    }

                    cell.Append(line[i++]);
                }
            }

            cells.Add(cell.ToString());
            if (i >= line.Length)
            {
                return cells;
            }

            i++;
        }
    }

    private enum FieldType
    {
        String,
        Int32,
        Int64,
        Bool,
        Hash,
    }

    private readonly record struct Value(JsonTokenType Kind, string Text, long? Integer);

    private static readonly Dictionary<string, FieldType> Schema = new(StringComparer.Ordinal)
    {
        ["seq"] = FieldType.Int64,
        ["ts"] = FieldType.Int64,
        ["time"] = FieldType.String,
        ["kind"] = FieldType.String,
        ["agent"] = FieldType.String,
        ["sourceIp"] = FieldType.String,
        ["method"] = FieldType.String,
        ["host"] = FieldType.String,
        ["port"] = FieldType.Int32,
        ["path"] = FieldType.String,
        ["decision"] = FieldType.String,
        ["reason"] = FieldType.String,
        ["policy"] = FieldType.String,
        ["rule"] = FieldType.String,
        ["status"] = FieldType.Int32,
        ["connId"] = FieldType.Int64,
        ["bytesUp"] = FieldType.Int64,
        ["bytesDown"] = FieldType.Int64,
        ["durationMs"] = FieldType.Int64,
        ["prevHash"] = FieldType.Hash,
        ["hash"] = FieldType.Hash,
        ["format"] = FieldType.Int32,
        ["dialedIp"] = FieldType.String,
        ["enforced"] = FieldType.Bool,
        ["identity"] = FieldType.String,
        ["credential"] = FieldType.String,
    };

    private static readonly string[] V2Only = ["dialedIp", "enforced", "identity"];

    private static readonly string[] V3Only = ["credential"];

    /// <summary>Reads one flat object of scalars, refusing duplicate keys and anything after it.</summary>
    private static string? ReadObject(byte[] utf8, Dictionary<string, Value> values)
    {
        var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow });
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return "not a JSON object";
            }

            while (true)
            {
                if (!reader.Read())
                {
                    return "the line ends inside the record (cut line)";
                }

                if (reader.TokenType == JsonTokenType.EndObject)
                {
                    break;
                }

                var name = reader.GetString()!;
                if (!reader.Read())
                {
                    return "the line ends inside the record (cut line)";
                }

                Value value;
                switch (reader.TokenType)
                {
                    case JsonTokenType.String:
                        value = new Value(JsonTokenType.String, reader.GetString()!, null);
                        break;
                    case JsonTokenType.Number:
                        var raw = Encoding.UTF8.GetString(reader.HasValueSequence ? System.Buffers.BuffersExtensions.ToArray(reader.ValueSequence) : reader.ValueSpan);
                        value = new Value(JsonTokenType.Number, raw, ParseInteger(raw));
                        break;
                    case JsonTokenType.True or JsonTokenType.False or JsonTokenType.Null:
                        value = new Value(reader.TokenType, string.Empty, null);
                        break;
                    default:
                        // Objects and arrays: the record is flat.
                        value = new Value(reader.TokenType, string.Empty, null);
                        reader.Skip();
                        break;
                }

                if (!values.TryAdd(name, value))
                {
                    return $"key \"{name}\" appears twice (a reader would see one value, the hash covers another)";
                }
            }

            if (reader.Read())
            {
                return "text follows the record on the same line";
            }
        }
        catch (JsonException)
        {
            return reader.BytesConsumed >= utf8.Length
                ? "the line ends inside the record (cut line)"
                : $"not valid JSON at byte {reader.BytesConsumed + 1}";
        }

        return null;
    }

    /// <summary>An integer written as one: optional minus, digits, no fraction or exponent.</summary>
    private static long? ParseInteger(string raw) =>
        raw.Length > 0 && raw.AsSpan(raw[0] == '-' ? 1 : 0).IndexOfAnyExceptInRange('0', '9') < 0 && raw != "-"
        && long.TryParse(raw, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v) ? v : null;

    private static AuditEntry? Build(Dictionary<string, Value> values, string what, out string? problem)
    {
        problem = null;
        foreach (var (name, value) in values)
        {
            if (!Schema.TryGetValue(name, out var type))
            {
                problem = $"unknown {(what.Length == 0 ? "key" : "column")} \"{name}\"";
                return null;
            }

            problem = type switch
            {
                FieldType.String when value.Kind != JsonTokenType.String => $"{what}{name} must be a string",
                FieldType.Hash when value.Kind != JsonTokenType.String => $"{what}{name} must be a string",
                FieldType.Hash when value.Text.Length != 64 || value.Text.AsSpan().IndexOfAnyExcept(LowerHex) >= 0 => $"{what}{name} must be 64 lowercase hex digits",
                FieldType.Bool when value.Kind is not (JsonTokenType.True or JsonTokenType.False) => $"{what}{name} must be true or false",
                FieldType.Int32 or FieldType.Int64 when value.Kind != JsonTokenType.Number => $"{what}{name} must be an integer",
                FieldType.Int32 or FieldType.Int64 when value.Integer is null => $"{what}{name} must be an integer, not {value.Text}",
                FieldType.Int32 when value.Integer is < int.MinValue or > int.MaxValue => $"{what}{name} {value.Text} is out of range",
                _ => null,
            };
            if (problem is not null)
            {
                return null;
            }
        }

        var format = values.TryGetValue("format", out var f) ? f.Integer!.Value : AuditCodec.FormatVersion1;
        if (format is not (AuditCodec.FormatVersion1 or AuditCodec.FormatVersion or AuditCodec.FormatVersion3))
        {
            problem = $"unknown format {format}";
            return null;
        }

        foreach (var name in Schema.Keys)
        {
            var required = name != "time" && (name != "format" || format != AuditCodec.FormatVersion1) && (format != AuditCodec.FormatVersion1 || Array.IndexOf(V2Only, name) < 0)
                && (format == AuditCodec.FormatVersion3 || Array.IndexOf(V3Only, name) < 0);
            var present = values.ContainsKey(name);
            if (required && !present)
            {
                problem = $"{what}{name} is missing";
                return null;
            }

            if (!required && present && name != "time" && name != "format")
            {
                problem = $"{what}{name} is not a field of format {format}";
                return null;
            }
        }

        var kind = values["kind"].Text switch
        {
            "decision" => AuditKind.Decision,
            "close" => AuditKind.Close,
            "system" => AuditKind.System,
            var k => (AuditKind?)null,
        };
        if (kind is null)
        {
            problem = $"unknown kind \"{values["kind"].Text}\"";
            return null;
        }

        var identity = AuditIdentity.None;
        if (format != AuditCodec.FormatVersion1)
        {
            var name = values["identity"].Text;
            identity = name switch
            {
                "" => AuditIdentity.None,
                "credential" => AuditIdentity.Credential,
                "unauthenticated" => AuditIdentity.Unauthenticated,
                "listener" => AuditIdentity.Listener,
                "transparent" when format >= AuditCodec.FormatVersion3 => AuditIdentity.Transparent,
                _ => (AuditIdentity)255,
            };
            if ((byte)identity == 255)
            {
                problem = $"unknown identity \"{name}\"";
                return null;
            }
        }

        string S(string name) => values.TryGetValue(name, out var v) ? v.Text : string.Empty;
        foreach (var (name, value) in values)
        {
            if (value.Kind == JsonTokenType.String && Encoding.UTF8.GetByteCount(value.Text) > ushort.MaxValue)
            {
                problem = $"{what}{name} is longer than a record field can be (65,535 UTF-8 bytes)";
                return null;
            }
        }

        var ts = values["ts"].Integer!.Value;
        var rendered = AuditEntry.RenderTime(ts);
        if (!values.TryGetValue("time", out var time))
        {
            // Omitted only where there is nothing to render; otherwise a reader sorting or filtering
            // by time would miss the record.
            if (rendered is not null)
            {
                problem = $"{what}time is missing (ts {ts} is \"{rendered}\")";
                return null;
            }
        }
        else
        {
            if (rendered is null || !string.Equals(time.Text, rendered, StringComparison.Ordinal))
            {
                problem = rendered is null
                    ? $"{what}time \"{time.Text}\" is given but ts {ts} lies outside the years 0001-9999"
                    : $"{what}time \"{time.Text}\" does not render ts {ts} (that is \"{rendered}\")";
                return null;
            }
        }

        return new AuditEntry
        {
            Format = (int)format,
            Seq = values["seq"].Integer!.Value,
            TimestampNs = ts,
            Kind = kind.Value,
            Agent = S("agent"),
            SourceIp = S("sourceIp"),
            Method = S("method"),
            Host = S("host"),
            Port = (int)values["port"].Integer!.Value,
            Path = S("path"),
            Decision = S("decision"),
            Reason = S("reason"),
            Policy = S("policy"),
            Rule = S("rule"),
            Status = (int)values["status"].Integer!.Value,
            ConnectionId = values["connId"].Integer!.Value,
            BytesUp = values["bytesUp"].Integer!.Value,
            BytesDown = values["bytesDown"].Integer!.Value,
            DurationMs = values["durationMs"].Integer!.Value,
            DialedIp = S("dialedIp"),
            Credential = S("credential"),
            Enforced = format == AuditCodec.FormatVersion1 || values["enforced"].Kind == JsonTokenType.True,
            Identity = identity,
            PrevHash = Convert.FromHexString(values["prevHash"].Text),
            Hash = Convert.FromHexString(values["hash"].Text),
        };
    }
}
