namespace ChronoGuard.Policy;

/// <summary>The three TATs of one bucket set; each on its own cache line so two cores do not fight over one.</summary>
[System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Explicit, Size = 192)]
internal sealed class BucketState
{
    [System.Runtime.InteropServices.FieldOffset(0)]
    public long MinuteTat;

    [System.Runtime.InteropServices.FieldOffset(64)]
    public long HourTat;

    [System.Runtime.InteropServices.FieldOffset(128)]
    public long DayTat;
}
