using System.Globalization;
using System.Text;
using System.Text.Json;

namespace ChronoGuard.Audit;

/// <summary>
/// A signed statement "the chain had <c>Hash</c> at <c>Seq</c> at <c>Time</c>": one line of
/// checkpoints.jsonl and of the log output. The signature is ECDSA P-256 with SHA-256 (DER, base64)
/// over the UTF-8 text <c>chronoguard-checkpoint-v1 SEQ HASH TIME</c> (docs/audit-format.md).
/// </summary>
internal sealed record Checkpoint(long Seq, string Hash, string Time, string KeyId, string Signature)
{
    public const string FileName = "checkpoints.jsonl";

    public static byte[] Message(long seq, string hash, string time) =>
        Encoding.UTF8.GetBytes($"chronoguard-checkpoint-v1 {seq.ToString(CultureInfo.InvariantCulture)} {hash} {time}");

    public byte[] Message() => Message(Seq, Hash, Time);

    public string ToJson()
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            WriteTo(w);
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    public void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteNumber("seq", Seq);
        w.WriteString("hash", Hash);
        w.WriteString("time", Time);
        w.WriteString("keyId", KeyId);
        w.WriteString("sig", Signature);
        w.WriteEndObject();
    }

    /// <summary>One checkpoints.jsonl line, or null with why (the signature is checked separately).</summary>
    public static Checkpoint? Parse(string line, out string? problem)
    {
        problem = null;
        try
        {
            using var doc = JsonDocument.Parse(line);
            var r = doc.RootElement;
            if (r.ValueKind != JsonValueKind.Object)
            {
                problem = "not a JSON object";
                return null;
            }

            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (var p in r.EnumerateObject())
            {
                if (!names.Add(p.Name) || p.Name is not ("seq" or "hash" or "time" or "keyId" or "sig"))
                {
                    problem = $"key \"{p.Name}\" is duplicated or unknown";
                    return null;
                }
            }

            if (names.Count != 5 || r.GetProperty("seq").ValueKind != JsonValueKind.Number || !r.GetProperty("seq").TryGetInt64(out var seq)
                || r.GetProperty("hash").GetString() is not { Length: 64 } hash || r.GetProperty("time").GetString() is not { } time
                || r.GetProperty("keyId").GetString() is not { } keyId || r.GetProperty("sig").GetString() is not { } sig)
            {
                problem = "needs seq (integer), hash (64 hex digits), time, keyId and sig (strings)";
                return null;
            }

            if (hash.AsSpan().IndexOfAnyExcept(AuditJson.LowerHex) >= 0)
            {
                problem = "hash must be 64 lowercase hex digits";
                return null;
            }

            return new Checkpoint(seq, hash, time, keyId, sig);
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            problem = "not a checkpoint line (cut or not JSON)";
            return null;
        }
    }
}
