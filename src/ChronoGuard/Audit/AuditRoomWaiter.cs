using System.Threading.Tasks.Sources;

namespace ChronoGuard.Audit;

/// <summary>
/// One producer waiting for room in the audit ring. Pooled by its writer: a waiter goes back to the
/// pool once its awaiter has read the result, so back-pressure that lasts costs no allocation per wait.
/// Continuations run on the thread pool, never inline on the writer thread that completes them.
/// </summary>
internal sealed class AuditRoomWaiter(AuditWriter owner) : IValueTaskSource
{
    private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = true };

    public short Version => _core.Version;

    public void Reset() => _core.Reset();

    public void Complete() => _core.SetResult(true);

    public void GetResult(short token)
    {
        try
        {
            _core.GetResult(token);
        }
        finally
        {
            owner.ReturnRoomWaiter(this);
        }
    }

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
