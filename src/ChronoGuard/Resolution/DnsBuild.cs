namespace ChronoGuard.Resolution;

/// <summary>How rebuilding an upstream answer went (<see cref="DnsAnswers.Build"/>).</summary>
internal enum DnsBuild
{
    Ok,

    /// <summary>The upstream set TC: ask again over TCP.</summary>
    Truncated,

    /// <summary>The upstream answered SERVFAIL, REFUSED or another failure: the client gets SERVFAIL.</summary>
    Failed,

    /// <summary>Not an answer to this question, or not readable: the client gets SERVFAIL.</summary>
    Malformed,

    /// <summary>The rebuilt answer does not fit the buffer.</summary>
    TooLarge,
}
