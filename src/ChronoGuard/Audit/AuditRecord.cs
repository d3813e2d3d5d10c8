using System.Runtime.CompilerServices;
using System.Text;

namespace ChronoGuard.Audit;

/// <summary>
/// One audit record as it waits in the ring: fixed size and unmanaged, so appending is a copy into a
/// preallocated slot with no allocation. Text fields share one inline buffer, each truncated to its
/// limit (<see cref="Limits"/>, UTF-8 bytes, never mid-character); docs/audit-format.md lists them.
/// </summary>
internal struct AuditRecord
{
    public const int TextCount = 11;
    public const int TextBytes = 1511;

    private static readonly int[] LimitTable = [256, 64, 16, 255, 512, 24, 128, 64, 64, 64, 64];
    private static readonly int[] OffsetTable = [0, 256, 320, 336, 591, 1103, 1127, 1255, 1319, 1383, 1447];

    public long Seq;
    public long TimestampNs;
    public long ConnectionId;
    public long BytesUp;
    public long BytesDown;
    public long DurationMs;
    public int Port;
    public int Status;
    public AuditKind Kind;

    /// <summary>Format 2: false only when observe mode let a refusal through.</summary>
    public bool Enforced
    {
        readonly get => !_notEnforced;
        set => _notEnforced = !value;
    }

    /// <summary>How the agent of a decision was identified; None on close and system records (format 2).</summary>
    public AuditIdentity Identity;

    // Stored inverted so that default(AuditRecord), which system records start from, is enforced.
    private bool _notEnforced;
    private Lengths _lengths;
    private Text _text;

    /// <summary>Per field, in <see cref="AuditText"/> order: agent, sourceIp, method, host, path, decision, reason, policy, rule, dialedIp, credential.</summary>
    public static ReadOnlySpan<int> Limits => LimitTable;

    /// <summary>Clears a reused ring slot: every fixed field and every text length, not the text bytes.</summary>
    public void Reset()
    {
        Seq = 0;
        TimestampNs = 0;
        ConnectionId = 0;
        BytesUp = 0;
        BytesDown = 0;
        DurationMs = 0;
        Port = 0;
        Status = 0;
        Kind = default;
        _notEnforced = false;
        Identity = AuditIdentity.None;
        ((Span<ushort>)_lengths).Clear();
    }

    public void Set(AuditText field, scoped ReadOnlySpan<byte> utf8)
    {
        var limit = LimitTable[(int)field];
        var n = Math.Min(utf8.Length, limit);
        while (n < utf8.Length && n > 0 && (utf8[n] & 0xC0) == 0x80)
        {
            n--;
        }

        utf8[..n].CopyTo(((Span<byte>)_text).Slice(OffsetTable[(int)field], limit));
        ((Span<ushort>)_lengths)[(int)field] = (ushort)n;
    }

    public void Set(AuditText field, string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            ((Span<ushort>)_lengths)[(int)field] = 0;
            return;
        }

        Span<byte> scratch = stackalloc byte[1024];
        var chars = value.AsSpan(0, Math.Min(value.Length, 340));
        var n = Encoding.UTF8.GetBytes(chars, scratch);
        Set(field, scratch[..n]);
    }

    [System.Diagnostics.CodeAnalysis.UnscopedRef]
    public readonly ReadOnlySpan<byte> Get(AuditText field) =>
        ((ReadOnlySpan<byte>)_text).Slice(OffsetTable[(int)field], ((ReadOnlySpan<ushort>)_lengths)[(int)field]);

    public readonly string GetString(AuditText field) => Encoding.UTF8.GetString(Get(field));

    [InlineArray(TextCount)]
    private struct Lengths
    {
        private ushort _element;
    }

    [InlineArray(TextBytes)]
    private struct Text
    {
        private byte _element;
    }
}
