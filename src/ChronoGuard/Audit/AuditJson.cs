using System.Globalization;
using System.Text.Json;

namespace ChronoGuard.Audit;

/// <summary>The JSONL and CSV forms of a record (written by hand with Utf8JsonWriter: no reflection).</summary>
internal static class AuditJson
{
    public static readonly string[] Columns =
        ["seq", "ts", "time", "kind", "agent", "sourceIp", "method", "host", "port", "path", "decision", "reason", "policy", "rule", "status", "connId", "bytesUp", "bytesDown", "durationMs", "prevHash", "hash"];

    public static void Write(Utf8JsonWriter w, AuditEntry e)
    {
        w.WriteStartObject();
        w.WriteNumber("seq", e.Seq);
        w.WriteNumber("ts", e.TimestampNs);
        w.WriteString("time", e.Time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture));
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
        w.WriteString("prevHash", Convert.ToHexStringLower(e.PrevHash));
        w.WriteString("hash", Convert.ToHexStringLower(e.Hash));
        w.WriteEndObject();
    }

    public static AuditEntry Parse(string line)
    {
        using var doc = JsonDocument.Parse(line);
        var r = doc.RootElement;
        string S(string name) => r.GetProperty(name).GetString() ?? string.Empty;
        var kind = S("kind") switch
        {
            "decision" => AuditKind.Decision,
            "close" => AuditKind.Close,
            "system" => AuditKind.System,
            var k => throw new FormatException($"unknown kind \"{k}\""),
        };
        return new AuditEntry
        {
            Seq = r.GetProperty("seq").GetInt64(),
            TimestampNs = r.GetProperty("ts").GetInt64(),
            Kind = kind,
            Agent = S("agent"),
            SourceIp = S("sourceIp"),
            Method = S("method"),
            Host = S("host"),
            Port = r.GetProperty("port").GetInt32(),
            Path = S("path"),
            Decision = S("decision"),
            Reason = S("reason"),
            Policy = S("policy"),
            Rule = S("rule"),
            Status = r.GetProperty("status").GetInt32(),
            ConnectionId = r.GetProperty("connId").GetInt64(),
            BytesUp = r.GetProperty("bytesUp").GetInt64(),
            BytesDown = r.GetProperty("bytesDown").GetInt64(),
            DurationMs = r.GetProperty("durationMs").GetInt64(),
            PrevHash = Convert.FromHexString(S("prevHash")),
            Hash = Convert.FromHexString(S("hash")),
        };
    }

    public static string Csv(AuditEntry e)
    {
        static string Q(string s) => s.AsSpan().IndexOfAny(",\"\r\n") >= 0 ? "\"" + s.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : s;
        var i = CultureInfo.InvariantCulture;
        return string.Join(',',
            e.Seq.ToString(i), e.TimestampNs.ToString(i), e.Time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", i), AuditEntry.KindName(e.Kind),
            Q(e.Agent), Q(e.SourceIp), Q(e.Method), Q(e.Host), e.Port.ToString(i), Q(e.Path), Q(e.Decision), Q(e.Reason), Q(e.Policy), Q(e.Rule),
            e.Status.ToString(i), e.ConnectionId.ToString(i), e.BytesUp.ToString(i), e.BytesDown.ToString(i), e.DurationMs.ToString(i),
            Convert.ToHexStringLower(e.PrevHash), Convert.ToHexStringLower(e.Hash));
    }
}
