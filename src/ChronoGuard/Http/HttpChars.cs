using System.Buffers;

namespace ChronoGuard.Http;

/// <summary>The byte classes of RFC 9110 §5.6 that the head parser and the chunk scanner share.</summary>
internal static class HttpChars
{
    public static readonly SearchValues<byte> TChars =
        SearchValues.Create("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"u8);

    public static bool IsTChar(byte b) => TChars.Contains(b);

    /// <summary>field-vchar / SP / HTAB, obs-text included: everything but CTLs and DEL.</summary>
    public static bool IsFieldValueByte(byte b) => b == (byte)'\t' || (b >= 0x20 && b != 0x7F);

    /// <summary>qdtext: a field-value byte other than DQUOTE and backslash.</summary>
    public static bool IsQdText(byte b) => IsFieldValueByte(b) && b != (byte)'"' && b != (byte)'\\';
}
