namespace ChronoGuard.Proxy;

/// <summary>
/// What the close record says of a request: bytes each way, how long, why it ended; whether it failed
/// after its decision record was written (<see cref="FailedAfterRecord"/>: the close record is then
/// written even when no byte flowed), and the status the client was then answered (0 when none was
/// sent, as when a tunnel's client already had its 200).
/// </summary>
internal readonly record struct RequestTotals(bool Established, long BytesUp, long BytesDown, long DurationMs, string Reason, int Status = 0, bool FailedAfterRecord = false);
