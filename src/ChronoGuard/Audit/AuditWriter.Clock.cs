namespace ChronoGuard.Audit;

/// <summary>
/// <c>ts</c> never goes backwards within a chain (SPEC §5): a filter such as <c>export --since</c>
/// would otherwise hide the records written after the clock stepped back. The writer, which puts the
/// records in chain order, holds every record at the last <c>ts</c> until the clock catches up, and
/// records a step back of <see cref="ClockStepNs"/> or more once (<c>system</c>, <c>reason=clock_step</c>).
/// Smaller differences are the race between producers taking a seq and reading the clock: held, not recorded.
/// </summary>
internal sealed partial class AuditWriter
{
    private const long ClockStepNs = 1_000_000_000;

    // Writer thread only.
    private long _lastTsNs;
    private bool _clockStepRecorded;

    /// <summary>Writer thread, before the record at <paramref name="seq"/> is encoded and chained.</summary>
    private void KeepMonotonic(ref AuditRecord record, long seq)
    {
        if (record.TimestampNs >= _lastTsNs)
        {
            _lastTsNs = record.TimestampNs;
            _clockStepRecorded = false;
            return;
        }

        var behind = _lastTsNs - record.TimestampNs;
        // Recorded once per step (the ring may be full: then at a later record of the same step).
        if (behind >= ClockStepNs && !_clockStepRecorded && WriteSystem(
                "clock_step",
                $"the clock stepped back {behind / 1_000_000} ms at seq {seq} (to {FormatNs(record.TimestampNs)}); records keep ts {FormatNs(_lastTsNs)} until the clock catches up"))
        {
            _clockStepRecorded = true;
        }

        record.TimestampNs = _lastTsNs;
    }
}
