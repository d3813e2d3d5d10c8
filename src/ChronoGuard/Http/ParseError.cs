namespace ChronoGuard.Http;

/// <summary>Why a head was refused; the name is the audit reason and the status follows SPEC §4.</summary>
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
    BadChunk,
    TruncatedHead,
}

internal static class ParseErrors
{
    public static int StatusCode(ParseError error) => error switch
    {
        ParseError.TooManyHeaders or ParseError.HeadTooLarge => 431,
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
        ParseError.BadChunk => "bad_chunk",
        ParseError.TruncatedHead => "truncated_head",
        _ => "malformed",
    };
}
