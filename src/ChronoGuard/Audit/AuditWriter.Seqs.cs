using System.Globalization;

namespace ChronoGuard.Audit;

/// <summary>
/// A seq is a promise (SPEC §5): the ring hands a seq to a request the moment it claims a slot, before
/// anything is written. Such a seq is written (the writer keeps every claimed slot and every entry not
/// yet durable across a fault), or it is named lost by a chained <c>system</c> record
/// (<c>reason=lost</c>): a stop that could not commit leaves the exact bound and its cause in
/// <see cref="AuditSeqMark"/> and says so in <see cref="StopLoss"/>; a crash leaves the bound reserved
/// ahead. The next start continues above that bound, never reusing a seq a client may have seen.
/// </summary>
internal sealed partial class AuditWriter
{
    /// <summary>What a lost record's <c>path</c> begins with: the verifier accepts exactly this gap.</summary>
    internal static string LostRange(long first, long last) =>
        "seqs " + first.ToString(CultureInfo.InvariantCulture) + ".." + last.ToString(CultureInfo.InvariantCulture) + ": ";

    // Which FASTER instance is the writer's: one abandoned after a fault must not write commit files.
    private int _logGeneration;

    private bool IsLogGeneration(int generation) => Volatile.Read(ref _logGeneration) == generation;

    // Every seq handed out is below this persisted bound (AuditSeqMark.Next); writer thread only after start.
    private long _reservedSeq;

    // Reserved ahead in steps so the file is replaced about once per 16 ring laps, not per record; a
    // crash names at most this many seqs lost beyond those really given out.
    private long ReserveStep => (long)_ring.Capacity * 16;

    /// <summary>One line when the stop could not commit every seq it handed out or count it recorded (null when it did).</summary>
    public string? StopLoss { get; private set; }

    /// <summary>
    /// Before the record at <paramref name="head"/> is taken: once its slot is free, producers can
    /// claim seqs up to <c>head + capacity</c>, so the persisted bound must already lie above them.
    /// Throws the I/O error (a writer fault) with nothing taken.
    /// </summary>
    private void EnsureReserved(long head)
    {
        var bound = head + 1 + _ring.Capacity;
        if (bound <= _reservedSeq)
        {
            return;
        }

        var next = bound + ReserveStep;
        new AuditSeqMark(next).Write(_directory);
        _reservedSeq = next;
    }

    /// <summary>At start, before any producer: the ring starting at <paramref name="first"/> may hand out a whole lap.</summary>
    private void ReserveAtStart(long first) => EnsureReserved(first - 1);

    /// <summary>The first records of a start that continues above seqs the previous run handed out but never wrote.</summary>
    private void RecordCarried(long lostFrom, long lostTo, AuditSeqMark? mark, AuditRepairNote? repair)
    {
        if (lostTo >= lostFrom)
        {
            var cause = repair is not null
                ? "audit repair moved the damaged part of the log aside (the repair record that follows says what); the chain goes on above every seq handed out before it"
                : mark?.Cause ?? "the previous run ended without committing them (a crash, or a stop that could not record why); at most these seqs were given out";
            var seq = AppendSystem("lost", LostRange(lostFrom, lostTo) + cause);
            // Published counts the gap as records; it holds none.
            Interlocked.Add(ref _recordsTotal, -(seq - lostFrom));
        }

        if (mark?.FaultNote is { } note)
        {
            AppendSystem("writer_fault", note);
        }

        if (mark is { Unrecorded: > 0 })
        {
            AppendSystem("unrecorded", mark.UnrecordedDetail ?? $"{mark.Unrecorded} requests were not recorded: the audit writer had failed");
        }
    }

    private long AppendSystem(string reason, string detail)
    {
        var record = default(AuditRecord);
        record.Kind = AuditKind.System;
        record.Set(AuditText.Reason, reason);
        record.Set(AuditText.Path, detail);
        return Append(ref record);
    }

    private bool _notesTriedAtStop;

    /// <summary>
    /// Writer thread, at its final drain: the fault notes still owed go into the chain once more (the
    /// ring had no room for them while it was full); once, so a ring kept full cannot hold the stop.
    /// </summary>
    private bool OwesNotesAtStop()
    {
        if (_notesTriedAtStop || (Volatile.Read(ref _recoveredNote) is null && Volatile.Read(ref _unrecordedPending) == 0))
        {
            return false;
        }

        _notesTriedAtStop = true;
        return true;
    }

    /// <summary>
    /// After the writer thread ended (or was given up on): no producer may take a seq any more, so the
    /// bound becomes exact. Whatever lies between the committed head and it, and whatever the fault
    /// episode still owed the chain, goes into the mark for the next start and into <see cref="StopLoss"/>.
    /// </summary>
    private void SealSeqs(bool finished)
    {
        // The writer claims every free slot itself: a producer racing the stop either got its seq
        // before (below the bound) or gets none (Claim then counts it unrecorded).
        var first = -1L;
        while (_ring.TryClaim(out var claimed))
        {
            if (first < 0)
            {
                first = claimed;
            }
        }

        var next = first >= 0 ? first : _ring.NextSeq;
        var committed = CommittedSeq;
        var faulted = Faulted;
        var cause = next - 1 <= committed ? null
            : faulted ? $"the audit writer had failed ({FaultCause}) and the stop could not commit them"
            : finished ? "the stop could not commit them"
            : $"the stop could not commit them within Audit:CommitTimeoutMs ({Options.CommitTimeoutMs} ms)";
        var note = Volatile.Read(ref _recoveredNote)
            ?? (faulted ? $"the audit writer failed at {FormatNs(Volatile.Read(ref _faultedAtNs))} ({FaultCause}) and had not recovered when it stopped" : null);
        var unrecorded = Volatile.Read(ref _unrecordedPending);
        var unrecordedDetail = unrecorded > 0
            ? $"{unrecorded} requests were not recorded between {FormatNs(Volatile.Read(ref _unrecordedFirstNs))} and {FormatNs(Volatile.Read(ref _unrecordedLastNs))}: the audit writer had failed ({FaultCause})"
            : null;
        string? kept = null;
        try
        {
            new AuditSeqMark(Math.Max(next, committed + 1), cause, note, unrecorded, unrecordedDetail).Write(_directory);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // The bound reserved before still lies above every seq given out; only the cause is lost.
            kept = $"; {AuditSeqMark.FileName} could not be written ({ex.Message.ReplaceLineEndings(" ")}), the next start names the range from the bound reserved before";
        }

        if (cause is null && unrecorded == 0)
        {
            return;
        }

        var lost = cause is null ? string.Empty : $"seqs {committed + 1}..{next - 1} ({next - 1 - committed} records) were handed out and not committed: {cause}";
        var counted = unrecorded == 0 ? string.Empty : (lost.Length > 0 ? "; " : string.Empty) + $"{unrecorded} requests were not recorded";
        StopLoss = $"audit: {lost}{counted}; the next start records this in the chain (reason=lost){kept}";
    }
}
