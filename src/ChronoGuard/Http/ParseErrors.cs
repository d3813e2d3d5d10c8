namespace ChronoGuard.Http;

internal static class ParseErrors
{
    public static int StatusCode(ParseError error) => error switch
    {
        ParseError.TooManyHeaders or ParseError.HeadTooLarge or ParseError.TrailerTooLarge => 431,
        _ => 400,
    };

    // Preallocated: the refusal path must not build strings per request.
    public static string Reason(ParseError error) => error switch
    {
        ParseError.None => "none",
        ParseError.BareLf => "bare_lf",
        ParseError.BareCr => "bare_cr",
        ParseError.ObsFold => "obs_fold",
        ParseError.BadRequestLine => "bad_request_line",
        ParseError.BadMethod => "bad_method",
        ParseError.BadTarget => "bad_target",
        ParseError.BadVersion => "bad_version",
        ParseError.BadHeaderName => "bad_header_name",
        ParseError.BadHeaderValue => "bad_header_value",
        ParseError.WhitespaceBeforeColon => "whitespace_before_colon",
        ParseError.TooManyHeaders => "too_many_headers",
        ParseError.HeadTooLarge => "head_too_large",
        ParseError.BadContentLength => "bad_content_length",
        ParseError.DuplicateContentLength => "duplicate_content_length",
        ParseError.ContentLengthWithTransferEncoding => "content_length_with_transfer_encoding",
        ParseError.UnsupportedTransferEncoding => "unsupported_transfer_encoding",
        ParseError.DuplicateHost => "duplicate_host",
        ParseError.MissingHost => "missing_host",
        ParseError.HostMismatch => "host_mismatch",
        ParseError.NotAProxyRequest => "not_a_proxy_request",
        ParseError.HttpsRequiresConnect => "https_requires_connect",
        ParseError.UserInfoInTarget => "userinfo_in_target",
        ParseError.BadStatusLine => "bad_status_line",
        ParseError.TruncatedHead => "truncated_head",
        ParseError.FramingHeaderInConnection => "framing_header_in_connection",
        ParseError.BadPath => "bad_path",
        ParseError.DuplicateProxyAuthorization => "duplicate_proxy_authorization",
        ParseError.DuplicateUserAgent => "duplicate_user_agent",
        ParseError.NotOriginForm => "not_origin_form",
        ParseError.BadChunkSize => "bad_chunk_size",
        ParseError.ChunkSizeTooLarge => "chunk_size_too_large",
        ParseError.ChunkBareLf => "chunk_bare_lf",
        ParseError.ChunkBareCr => "chunk_bare_cr",
        ParseError.ChunkDataOverrun => "chunk_data_overrun",
        ParseError.BadChunkExtension => "bad_chunk_extension",
        ParseError.ChunkExtensionTooLong => "chunk_extension_too_long",
        ParseError.BadTrailer => "bad_trailer",
        ParseError.TrailerTooLarge => "trailer_too_large",
        _ => "malformed",
    };
}
