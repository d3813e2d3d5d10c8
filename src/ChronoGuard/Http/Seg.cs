namespace ChronoGuard.Http;

/// <summary>A slice of a head buffer by offset, so parsed fields survive awaits without copying.</summary>
internal readonly record struct Seg(int Start, int Length)
{
    public bool IsEmpty => Length == 0;

    public ReadOnlySpan<byte> Of(byte[] buffer) => buffer.AsSpan(Start, Length);
}
