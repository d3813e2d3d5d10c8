using ChronoGuard.Policy;

namespace ChronoGuard.Tests.Policy;

public sealed class TimeWindowTests
{
    private static TimeWindow Window(string zone, DayOfWeek[] days, params (int, int)[] ranges) =>
        TimeWindow.Create(TimeZoneInfo.FindSystemTimeZoneById(zone), days, ranges);

    private static DateTimeOffset Utc(int y, int mo, int d, int h, int mi) => new(y, mo, d, h, mi, 0, TimeSpan.Zero);

    [Fact]
    public void Berlin_office_hours_follow_the_spring_forward()
    {
        var office = Window("Europe/Berlin", [DayOfWeek.Monday, DayOfWeek.Tuesday, DayOfWeek.Wednesday, DayOfWeek.Thursday, DayOfWeek.Friday], (8 * 60, (18 * 60) + 30));
        // Friday 2026-03-27, CET (UTC+1): 06:15 UTC is 07:15 local, closed; 07:15 UTC is 08:15, open.
        Assert.False(office.IsOpen(Utc(2026, 3, 27, 6, 15)));
        Assert.True(office.IsOpen(Utc(2026, 3, 27, 7, 15)));
        // Monday 2026-03-30, CEST (UTC+2) after the 29th: the same 06:15 UTC is now 08:15 local, open.
        Assert.True(office.IsOpen(Utc(2026, 3, 30, 6, 15)));
        Assert.True(office.IsOpen(Utc(2026, 3, 30, 16, 29)));
        Assert.False(office.IsOpen(Utc(2026, 3, 30, 16, 30)));
        // Saturday: closed; the next opening is Monday 08:00 CEST = 06:00 UTC.
        Assert.Equal(Utc(2026, 3, 30, 6, 0), office.NextOpening(Utc(2026, 3, 28, 12, 0)));
        // Across the autumn change (2026-10-25): Friday opens 06:00 UTC (CEST), Monday 07:00 UTC (CET).
        Assert.Equal(Utc(2026, 10, 26, 7, 0), office.NextOpening(Utc(2026, 10, 24, 0, 0)));
    }

    [Fact]
    public void New_York_range_across_midnight_and_the_repeated_hour()
    {
        // Saturday 22:00 to Sunday 02:00, local wall-clock time.
        var night = Window("America/New_York", [DayOfWeek.Saturday], (22 * 60, 2 * 60));
        // 2026-10-31 is a Saturday; clocks fall back at 2026-11-01 02:00 EDT -> 01:00 EST.
        Assert.False(night.IsOpen(Utc(2026, 11, 1, 1, 59)));   // Sat 21:59 EDT
        Assert.True(night.IsOpen(Utc(2026, 11, 1, 2, 0)));     // Sat 22:00 EDT
        Assert.True(night.IsOpen(Utc(2026, 11, 1, 5, 30)));    // Sun 01:30 EDT
        Assert.True(night.IsOpen(Utc(2026, 11, 1, 6, 30)));    // Sun 01:30 EST, the hour again
        Assert.False(night.IsOpen(Utc(2026, 11, 1, 7, 0)));    // Sun 02:00 EST
        Assert.False(night.IsOpen(Utc(2026, 10, 31, 3, 0)));   // Fri 23:00 EDT: not a Saturday start
        Assert.Equal(Utc(2026, 11, 1, 7, 0), night.NextClosing(Utc(2026, 11, 1, 6, 0)));
    }

    [Fact]
    public void Spring_forward_gap_is_skipped_by_next_opening()
    {
        // Sunday 02:00-03:00 does not exist on 2026-03-08 in New York; the window opens at 03:00 EDT
        // (07:00 UTC) on the next day it exists... the gap minutes never come, so the next Sunday.
        var gap = Window("America/New_York", [DayOfWeek.Sunday], (2 * 60, (2 * 60) + 30));
        var opening = gap.NextOpening(Utc(2026, 3, 8, 5, 0));
        Assert.Equal(Utc(2026, 3, 15, 6, 0), opening);
    }
}
