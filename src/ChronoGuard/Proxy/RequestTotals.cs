namespace ChronoGuard.Proxy;

/// <summary>What the close record says of a request: bytes each way, how long, why it ended.</summary>
internal readonly record struct RequestTotals(bool Established, long BytesUp, long BytesDown, long DurationMs, string Reason);
