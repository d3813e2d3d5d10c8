namespace ChronoGuard.Tests.Audit;

/// <summary>A fact that needs root (tmpfs mounts, chattr); skipped, saying so, otherwise.</summary>
public sealed class RootFactAttribute : FactAttribute
{
    public RootFactAttribute()
    {
        if (!Environment.IsPrivilegedProcess)
        {
            Skip = "needs root: mounts a small tmpfs / uses chattr to fault the audit disk";
        }
    }
}
