namespace ChronoGuard.Tests.Support;

/// <summary>
/// A test that runs in a private network namespace (<see cref="NetNamespace"/>): skipped, with the
/// reason, only where the machine cannot make one (not root, no unshare); everywhere else it runs.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class NamespaceFactAttribute : FactAttribute
{
    public NamespaceFactAttribute()
    {
        if (NetNamespace.Unavailable is { } reason)
        {
            Skip = reason;
        }
    }
}
