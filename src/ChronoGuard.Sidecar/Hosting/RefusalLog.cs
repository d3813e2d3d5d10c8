using System.Diagnostics;
using ChronoGuard.Audit;
using Microsoft.Extensions.Logging;

namespace ChronoGuard.Sidecar.Hosting;

/// <summary>
/// <c>Logging:Refusals</c> (SPEC §3, §9): one structured log line per refused request (or per decision,
/// with <c>all</c>), so cluster log tooling sees denials without reading the audit log. It is fed from
/// the audit writer's thread as each record is chained, never from the request path, so what it logs
/// has its seq, and what the audit bounds (unauthenticated floods, as one counted system record a
/// second) it bounds the same way. The writer only copies the record into a fixed ring and returns:
/// a full ring, or more than <see cref="MaxLinesPerSecond"/>, costs lines (counted, and said once a
/// second), never a wait. The lines are written by a thread of their own.
/// </summary>
internal sealed class RefusalLog : IDisposable
{
    /// <summary>Ring slots; each holds a whole record (about 1.6 KiB), so the ring is under 1 MiB.</summary>
    public const int Capacity = 512;

    /// <summary>Past this many lines in a second the rest are counted: the console logger's own queue (2,500 lines) then never fills from here.</summary>
    public const int MaxLinesPerSecond = 1000;

    private const string Empty = "-";

    private readonly AuditRecord[] _slots = new AuditRecord[Capacity];
    private readonly bool _all;
    private readonly ILogger _logger;
    private readonly ManualResetEventSlim _wake = new(false);
    private readonly Thread _thread;
    private long _written;
    private long _read;
    private long _dropped;
    private volatile bool _stopping;
    private long _windowStart;
    private int _linesInWindow;

    /// <param name="all">Every decision, not only refusals.</param>
    public RefusalLog(bool all, ILogger logger)
    {
        _all = all;
        _logger = logger;
        _thread = new Thread(Run) { IsBackground = true, Name = "chronoguard refusal log" };
        _thread.Start();
    }

    /// <summary>Lines not written because the ring was full or the second's quota spent (tests and the summary line).</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Whether a record gets a line: a decision that is not an enforced ALLOW (or any decision with <c>all</c>), and the counted floods.</summary>
    public static bool Wants(bool all, in AuditRecord record) => record.Kind switch
    {
        AuditKind.Decision => all || !record.Enforced || !record.Get(AuditText.Decision).SequenceEqual("ALLOW"u8),
        AuditKind.System => record.Get(AuditText.Reason) is var reason
            && (reason.SequenceEqual("unauthenticated_suppressed"u8) || reason.SequenceEqual("dns_suppressed"u8)),
        _ => false,
    };

    /// <summary>On the audit writer's thread (<see cref="AuditWriter.OnChained"/>): copy or count, never wait.</summary>
    public void Observe(in AuditRecord record)
    {
        if (!Wants(_all, record))
        {
            return;
        }

        var written = _written;
        if (written - Volatile.Read(ref _read) >= Capacity)
        {
            Interlocked.Increment(ref _dropped);
            return;
        }

        _slots[written & (Capacity - 1)] = record;
        Volatile.Write(ref _written, written + 1);
        _wake.Set();
    }

    private void Run()
    {
        while (true)
        {
            // With lines owed to the summary, wake within a second to say so even if nothing follows.
            _wake.Wait(Interlocked.Read(ref _dropped) > 0 ? 1000 : Timeout.Infinite);
            _wake.Reset();
            Drain();
            if (_stopping)
            {
                Drain();
                Summarize(force: true);
                return;
            }
        }
    }

    private void Drain()
    {
        var read = _read;
        while (read < Volatile.Read(ref _written))
        {
            ref var record = ref _slots[read & (Capacity - 1)];
            if (Allowed())
            {
                try
                {
                    Write(record);
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    // A logging provider that throws must not end the thread (and with it every later line).
                    Interlocked.Increment(ref _dropped);
                }
            }
            else
            {
                Interlocked.Increment(ref _dropped);
            }

            // Released only after the slot was read: the writer may then overwrite it.
            Volatile.Write(ref _read, ++read);
        }

        Summarize(force: false);
    }

    /// <summary>The second's quota: true while this second has lines left.</summary>
    private bool Allowed()
    {
        var now = Stopwatch.GetTimestamp();
        if (now - _windowStart >= Stopwatch.Frequency)
        {
            Summarize(force: true);
            _windowStart = now;
            _linesInWindow = 0;
        }

        return ++_linesInWindow <= MaxLinesPerSecond;
    }

    private void Summarize(bool force)
    {
        if (!force && Stopwatch.GetTimestamp() - _windowStart < Stopwatch.Frequency)
        {
            return;
        }

        var dropped = Interlocked.Exchange(ref _dropped, 0);
        if (dropped > 0)
        {
            try
            {
                SidecarLog.RefusalLinesDropped(_logger, dropped, MaxLinesPerSecond);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                // As for a line (Drain): a provider that throws must not end this thread, which would
                // take the process with it. The count is kept for the next summary.
                Interlocked.Add(ref _dropped, dropped);
            }
        }
    }

    private void Write(in AuditRecord r)
    {
        var decision = Text(r, AuditText.Decision);
        var level = r.Kind == AuditKind.Decision && r.Enforced && decision == "ALLOW" ? LogLevel.Information : LogLevel.Warning;
        if (!_logger.IsEnabled(level))
        {
            return;
        }

        var (reason, agent, method, host, source, dialed) = (Text(r, AuditText.Reason), Text(r, AuditText.Agent), Text(r, AuditText.Method), Text(r, AuditText.Host), Text(r, AuditText.SourceIp), Text(r, AuditText.DialedIp));
        if (r.Kind == AuditKind.System)
        {
            var detail = Text(r, AuditText.Path);
            SidecarLog.RefusalsCounted(_logger, reason, source, host, r.Status, r.Seq, detail);
        }
        else if (!r.Enforced)
        {
            SidecarLog.RefusalNotEnforced(_logger, decision, reason, agent, method, host, r.Port, source, dialed, r.Status, r.Seq);
        }
        else if (level == LogLevel.Information)
        {
            SidecarLog.Decided(_logger, decision, reason, agent, method, host, r.Port, source, dialed, r.Status, r.Seq);
        }
        else
        {
            SidecarLog.Refused(_logger, decision, reason, agent, method, host, r.Port, source, dialed, r.Status, r.Seq);
        }
    }

    private static string Text(in AuditRecord r, AuditText field) => r.Get(field).IsEmpty ? Empty : r.GetString(field);

    /// <summary>After the audit writer stopped (nothing is chained any more): writes what is left, then ends the thread.</summary>
    public void Dispose()
    {
        if (_stopping)
        {
            return;
        }

        _stopping = true;
        _wake.Set();
        // Bounded: a stdout that no one reads must not hold up the stop.
        if (_thread.Join(TimeSpan.FromSeconds(2)))
        {
            _wake.Dispose();
        }
    }
}
