using System.Threading.Channels;

namespace ChronoGuard.Tests.Support;

/// <summary>
/// A clock whose timers fire only when the test says so: each timer the code under test creates is
/// handed to the test with its due time, so waits and backoffs are observed and driven, never slept.
/// Made with a start time, its clock (<see cref="GetUtcNow"/> and <see cref="GetTimestamp"/>) moves
/// only by <see cref="Advance"/> too; without one it is the system's.
/// </summary>
internal sealed class TimerTimeProvider(DateTimeOffset? start = null) : TimeProvider
{
    private readonly Channel<PendingTimer> _created = Channel.CreateUnbounded<PendingTimer>();
    private long _ticks = start?.UtcTicks ?? 0;

    public override DateTimeOffset GetUtcNow() => start is null ? base.GetUtcNow() : new DateTimeOffset(Interlocked.Read(ref _ticks), TimeSpan.Zero);

    public override long GetTimestamp() => start is null ? base.GetTimestamp() : Interlocked.Read(ref _ticks);

    public override long TimestampFrequency => start is null ? base.TimestampFrequency : TimeSpan.TicksPerSecond;

    /// <summary>Moves the manual clock (made with a start time).</summary>
    public void Advance(TimeSpan by)
    {
        if (start is null)
        {
            throw new InvalidOperationException("this clock is the system's");
        }

        Interlocked.Add(ref _ticks, by.Ticks);
    }

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new PendingTimer(callback, state, dueTime);
        _created.Writer.TryWrite(timer);
        return timer;
    }

    /// <summary>The next timer created (in order), waiting for it up to <paramref name="timeout"/>.</summary>
    public async Task<PendingTimer> NextTimerAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        return await _created.Reader.ReadAsync(cts.Token);
    }

    /// <summary>Whether a timer was created that the test has not taken yet.</summary>
    public bool HasPendingTimer => _created.Reader.TryPeek(out _);

    internal sealed class PendingTimer(TimerCallback callback, object? state, TimeSpan dueTime) : ITimer
    {
        public TimeSpan DueTime { get; } = dueTime;

        public bool Disposed { get; private set; }

        public void Fire() => callback(state);

        public bool Change(TimeSpan dueTime, TimeSpan period) => !Disposed;

        public void Dispose() => Disposed = true;

        public ValueTask DisposeAsync()
        {
            Disposed = true;
            return default;
        }
    }
}
