using ChronoGuard.Audit;
using ChronoGuard.Sidecar.Cli;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Audit;

/// <summary>
/// SPEC §5: <c>ts</c> never goes backwards within a chain. A clock stepped back is recorded once
/// (<c>system</c>, <c>reason=clock_step</c>), later records keep the previous <c>ts</c> until the clock
/// catches up, and <c>export --since</c> therefore hides none of them.
/// </summary>
public sealed class AuditClockStepTests
{
    private static readonly DateTimeOffset Start = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void A_clock_step_back_is_recorded_once_and_no_record_goes_back_in_time_so_export_since_keeps_them_all()
    {
        using var dir = new TempDir();
        var auditDir = dir.File("audit");
        var clock = new ManualTimeProvider(Start);
        var appended = 0;
        using (var writer = AuditWriter.Open(new AuditOptions { Directory = auditDir }, clock))
        {
            void Append(int count, TimeSpan step)
            {
                for (var i = 0; i < count; i++)
                {
                    var r = default(AuditRecord);
                    r.Set(AuditText.Host, "host.example");
                    Assert.True(writer.Append(ref r) >= 0);
                    appended++;
                    clock.Advance(step);
                }
            }

            Append(10, TimeSpan.FromSeconds(1));
            var before = clock.GetUtcNow();
            // A step back of an hour, then records while the clock is still behind.
            clock.Set(before - TimeSpan.FromHours(1));
            Append(20, TimeSpan.FromMinutes(1));
            // A small step back (under a second) is the producers' race, held but not recorded.
            clock.Advance(TimeSpan.FromMilliseconds(-500));
            Append(3, TimeSpan.Zero);
            // Caught up and past: time moves again.
            clock.Set(before + TimeSpan.FromMinutes(5));
            Append(5, TimeSpan.FromSeconds(1));
            // A second step, after catching up, is a second record.
            clock.Advance(TimeSpan.FromMinutes(-30));
            Append(4, TimeSpan.FromSeconds(1));
        }

        var entries = AuditReader.ReadDirectory(auditDir).Select(i => i.Entry!).ToList();
        for (var i = 1; i < entries.Count; i++)
        {
            Assert.True(entries[i].TimestampNs >= entries[i - 1].TimestampNs, $"seq {entries[i].Seq} goes back in time");
        }

        var steps = entries.Where(e => e.Kind == AuditKind.System && e.Reason == "clock_step").ToList();
        Assert.Equal(2, steps.Count);
        Assert.Contains("stepped back 3599000 ms", steps[0].Path, StringComparison.Ordinal);
        Assert.Contains("stepped back 1799000 ms", steps[1].Path, StringComparison.Ordinal);
        Assert.Equal(appended + steps.Count, entries.Count);

        // Every record from the start on is exported: none was back-dated before --since.
        var stdout = new StringWriter();
        Assert.Equal(0, ExportCommand.Run(["--audit-dir", auditDir, "--since", Start.ToString("O")], stdout, new StringWriter()));
        Assert.Equal(entries.Count, stdout.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }
}
