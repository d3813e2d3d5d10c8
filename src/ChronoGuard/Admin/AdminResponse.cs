using System.Buffers;
using System.Text.Json;

namespace ChronoGuard.Admin;

/// <summary>A status and a JSON body (every admin answer is JSON, errors included: <c>{"error": "..."}</c>).</summary>
internal sealed record AdminResponse(int Status, byte[] Body)
{
    public static AdminResponse Json(int status, Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        // Relaxed: the body is JSON for terminals and scripts, never HTML, so quotes and '<' stay readable.
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            write(json);
        }

        buffer.Write("\n"u8);
        return new AdminResponse(status, buffer.WrittenSpan.ToArray());
    }

    public static AdminResponse Error(int status, string message) => Json(status, w =>
    {
        w.WriteStartObject();
        w.WriteString("error", message);
        w.WriteEndObject();
    });
}
