using System.Runtime.CompilerServices;
using System.Threading.Tasks.Sources;
using ChronoGuard.Net;

namespace ChronoGuard.Tests.Proxy;

// These tests hold ValueTasks and read them on purpose: how they are consumed is what is tested.
#pragma warning disable CA2012, xUnit1031

/// <summary>
/// The builder of the per-request async methods against the runtime's own async methods as the
/// reference: the same results, exceptions, context flow and ordering; boxes reused, never shared by
/// two pending calls, and holding nothing of a finished call.
/// </summary>
public sealed class PooledValueTaskBuilderTests
{
    private static readonly AsyncLocal<string?> Flowing = new();

    /// <summary>A completion the test controls, so a call suspends exactly where the test says.</summary>
    private sealed class Gate : IValueTaskSource<int>
    {
        private ManualResetValueTaskSourceCore<int> _core;

        public ValueTask<int> Wait() => new(this, _core.Version);

        public void Open(int value) => _core.SetResult(value);

        public void Fail(Exception e) => _core.SetException(e);

        public int GetResult(short token)
        {
            var v = _core.GetResult(token);
            _core.Reset();
            return v;
        }

        public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            _core.OnCompleted(continuation, state, token, flags);
    }

    [AsyncMethodBuilder(typeof(PooledValueTaskBuilder<>))]
    private static async ValueTask<int> Pooled(Gate gate, int add, List<string> log)
    {
        log.Add($"before {add}");
        var v = await gate.Wait().ConfigureAwait(false);
        log.Add($"after {add} {Flowing.Value}");
        return v == -1 ? throw new InvalidOperationException($"failed {add}") : v + add;
    }

    private static async ValueTask<int> Reference(Gate gate, int add, List<string> log)
    {
        log.Add($"before {add}");
        var v = await gate.Wait().ConfigureAwait(false);
        log.Add($"after {add} {Flowing.Value}");
        return v == -1 ? throw new InvalidOperationException($"failed {add}") : v + add;
    }

    [AsyncMethodBuilder(typeof(PooledValueTaskBuilder<>))]
    private static async ValueTask<int> PooledSync(int v, Exception? fail)
    {
        await Task.CompletedTask.ConfigureAwait(false);
        return fail is null ? v : throw fail;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private static async ValueTask<int> ReferenceSync(int v, Exception? fail)
    {
        await Task.CompletedTask.ConfigureAwait(false);
        return fail is null ? v : throw fail;
    }

    [AsyncMethodBuilder(typeof(PooledValueTaskBuilder<>))]
    private static async ValueTask<int> Holding(Gate gate, object held)
    {
        var v = await gate.Wait().ConfigureAwait(false);
        return v + held.GetHashCode() * 0;
    }

    [Fact]
    public async Task Many_pending_calls_complete_in_any_order_exactly_as_the_runtime_builder_does()
    {
        var random = new Random(20261205);
        for (var round = 0; round < 40; round++)
        {
            var count = random.Next(1, 300);
            var order = Enumerable.Range(0, count).OrderBy(_ => random.Next()).ToArray();
            var fails = Enumerable.Range(0, count).Select(_ => random.Next(5) == 0).ToArray();
            var pooled = await RunAsync(Pooled, count, order, fails);
            var reference = await RunAsync(Reference, count, order, fails);
            Assert.Equal(reference, pooled);
        }
    }

    private static async Task<List<string>> RunAsync(Func<Gate, int, List<string>, ValueTask<int>> method, int count, int[] order, bool[] fails)
    {
        var log = new List<string>();
        var gates = new Gate[count];
        var calls = new ValueTask<int>[count];
        Flowing.Value = "ctx";
        for (var i = 0; i < count; i++)
        {
            gates[i] = new Gate();
            calls[i] = method(gates[i], i, log);
        }

        Flowing.Value = null;
        foreach (var i in order)
        {
            gates[i].Open(fails[i] ? -1 : 1000 * i);
        }

        for (var i = 0; i < count; i++)
        {
            try
            {
                log.Add($"result {i} {await calls[i]}");
            }
            catch (InvalidOperationException e)
            {
                log.Add($"threw {i} {e.Message}");
            }
        }

        return log;
    }

    [Fact]
    public async Task A_call_that_never_suspends_keeps_its_result_or_exception_and_a_cancellation_stays_one()
    {
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        Exception?[] outcomes = [null, new InvalidOperationException("sync"), new OperationCanceledException(cancelled.Token)];
        foreach (var fail in outcomes)
        {
            var pooled = PooledSync(7, fail);
            var reference = ReferenceSync(7, fail);
            Assert.Equal(reference.IsCompletedSuccessfully, pooled.IsCompletedSuccessfully);
            Assert.Equal(reference.IsFaulted, pooled.IsFaulted);
            Assert.Equal(reference.IsCanceled, pooled.IsCanceled);
            if (fail is null)
            {
                Assert.Equal(7, await pooled);
                await reference;
            }
            else
            {
                Assert.Same(fail, await Assert.ThrowsAnyAsync<Exception>(async () => await pooled));
                Assert.Same(fail, await Assert.ThrowsAnyAsync<Exception>(async () => await reference));
            }
        }
    }

    [Fact]
    public async Task A_finished_call_leaves_nothing_alive_in_its_pooled_box()
    {
        var gate = new Gate();
        var weak = await StartAndFinishAsync(gate);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        Assert.False(weak.TryGetTarget(out _));
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static async Task<WeakReference<object>> StartAndFinishAsync(Gate gate)
    {
        var held = new object();
        var call = Holding(gate, held);
        Assert.False(call.IsCompleted);
        gate.Open(1);
        Assert.Equal(1, await call);
        return new WeakReference<object>(held);
    }

    [Fact]
    public void A_box_is_reused_after_its_result_is_read_and_a_stale_read_is_refused()
    {
        var gate = new Gate();
        var first = Holding(gate, "a");
        var box = Source(first);
        gate.Open(1);
        Assert.Equal(1, first.Result);
        Assert.Throws<InvalidOperationException>(() => first.Result);

        // Same thread, the box just returned: the next suspension of the method gets it back.
        var second = Holding(gate, "b");
        Assert.Same(box, Source(second));
        gate.Open(2);
        Assert.Equal(2, second.Result);
    }

    private static object? Source(ValueTask<int> task) =>
        typeof(ValueTask<int>).GetField("_obj", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!.GetValue(task);
}
