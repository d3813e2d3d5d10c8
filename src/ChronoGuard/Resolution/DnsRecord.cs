namespace ChronoGuard.Resolution;

/// <summary>A resource record's fixed part as read (<see cref="DnsWire.TryReadRecord"/>): its data is <c>message[DataOffset..][..DataLength]</c>.</summary>
internal readonly record struct DnsRecord(ushort Type, ushort Class, uint Ttl, int DataOffset, int DataLength);
