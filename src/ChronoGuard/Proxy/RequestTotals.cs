namespace ChronoGuard.Proxy;

/// <summary>
/// What the close record says of a request: bytes each way, how long, why it ended, and the status
/// the client was answered when the request failed after its decision record was written (0 when no
/// such answer was sent).
/// </summary>
internal readonly record struct RequestTotals(bool Established, long BytesUp, long BytesDown, long DurationMs, string Reason, int Status = 0);
