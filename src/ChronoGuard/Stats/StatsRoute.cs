using System.Buffers;

namespace ChronoGuard.Stats;

/// <summary>Writes a response body; returns the status code and content type.</summary>
internal delegate (int Status, string ContentType) StatsRoute(IBufferWriter<byte> body);
