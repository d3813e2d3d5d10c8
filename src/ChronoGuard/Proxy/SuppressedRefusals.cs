using System.Net;

namespace ChronoGuard.Proxy;

/// <summary>
/// Unauthenticated refusals of one source in one second that were counted instead of recorded one by
/// one: what its <c>system</c> record (<c>reason=unauthenticated_suppressed</c>) says. <see cref="Count"/>
/// is 0 when there is nothing to record. <see cref="Overflow"/> marks the shared entry of sources the
/// limiter's table had no room for in that second (<see cref="Source"/> is then the first of them).
/// </summary>
internal readonly record struct SuppressedRefusals(IPAddress? Source, long Second, int Count, string? FirstHost, bool Overflow);
