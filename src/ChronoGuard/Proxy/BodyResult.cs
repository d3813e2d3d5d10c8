using ChronoGuard.Http;

namespace ChronoGuard.Proxy;

/// <summary>How a body copy ended.</summary>
internal enum BodyOutcome : byte
{
    Complete,
    /// <summary>The source ended (EOF) before the body did.</summary>
    SourceEnded,
    /// <summary>Reading the source failed (reset, abort).</summary>
    SourceFailed,
    /// <summary>Sending to the sink failed.</summary>
    SinkFailed,
    /// <summary>The chunked framing was malformed; <see cref="BodyResult.Error"/> says where.</summary>
    BadFraming,
    /// <summary>The read was cancelled (a timeout or an abort).</summary>
    Cancelled,
    /// <summary>The agent's egress budget was spent mid-body.</summary>
    BudgetSpent,
}

internal readonly record struct BodyResult(BodyOutcome Outcome, ParseError Error = ParseError.None)
{
    public static BodyResult Done => new(BodyOutcome.Complete);

    public bool IsComplete => Outcome == BodyOutcome.Complete;
}
