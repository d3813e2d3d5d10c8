namespace ChronoGuard.Http;

/// <summary>Why a head or a chunked body was refused; the reason string is the audit reason, the status follows SPEC §4.</summary>
internal enum ParseError : byte
{
    None,
    BareLf,
    BareCr,
    ObsFold,
    BadRequestLine,
    BadMethod,
    BadTarget,
    BadVersion,
    BadHeaderName,
    BadHeaderValue,
    WhitespaceBeforeColon,
    TooManyHeaders,
    HeadTooLarge,
    BadContentLength,
    DuplicateContentLength,
    ContentLengthWithTransferEncoding,
    UnsupportedTransferEncoding,
    DuplicateHost,
    MissingHost,
    HostMismatch,
    NotAProxyRequest,
    HttpsRequiresConnect,
    UserInfoInTarget,
    BadStatusLine,
    TruncatedHead,

    /// <summary>A Connection (or Proxy-Connection) header names Content-Length, Transfer-Encoding or Host.</summary>
    FramingHeaderInConnection,

    /// <summary>A path that cannot be normalised without guessing (see <see cref="PathNormalizer"/>).</summary>
    BadPath,

    /// <summary>Two Proxy-Authorization headers: which one names the agent would be a guess.</summary>
    DuplicateProxyAuthorization,

    /// <summary>Two User-Agent headers: rules would judge one while the origin may read the other.</summary>
    DuplicateUserAgent,

    /// <summary>Inside an inspected tunnel, a target that is not a path (absolute-form, <c>*</c>, CONNECT).</summary>
    NotOriginForm,

    // Chunked bodies (ChunkedScanner), each reported at the first byte that cannot belong to the body.

    /// <summary>No hex digit where a chunk size must start, or a byte after it that is not ';', BWS or CRLF.</summary>
    BadChunkSize,

    /// <summary>More than 16 hex digits (leading zeros included), or a value past 2^63 - 1.</summary>
    ChunkSizeTooLarge,

    /// <summary>An LF without its CR in a chunk line, after chunk data or in the trailer section.</summary>
    ChunkBareLf,

    /// <summary>A CR not followed by LF in a chunk line, after chunk data or in the trailer section.</summary>
    ChunkBareCr,

    /// <summary>Chunk data not followed by CRLF: the chunk carries more bytes than its size.</summary>
    ChunkDataOverrun,

    /// <summary>A chunk extension that is not <c>;name[=token|quoted-string]</c> (RFC 9112 §7.1.1).</summary>
    BadChunkExtension,

    /// <summary>Extensions over 4 KiB in one chunk line or 64 KiB in one body.</summary>
    ChunkExtensionTooLong,

    /// <summary>A trailer line that is not <c>token ":" value</c>, or an obs-fold in the trailers.</summary>
    BadTrailer,

    /// <summary>A trailer section over 16 KiB.</summary>
    TrailerTooLarge,
}
