namespace ChronoGuard.Proxy;

/// <summary>What the DNS guard read of a query before deciding it (<see cref="DnsGuard.Answer"/>).</summary>
internal struct DnsQuestion
{
    /// <summary>Offset just past the question (the header's length when none was read).</summary>
    public int QuestionEnd;
    public int NameLength;
    public ushort Type;

    /// <summary>The client sent an OPT record (EDNS): the answer carries one.</summary>
    public bool Opt;

    /// <summary>The largest UDP answer the client takes (512 without EDNS).</summary>
    public int UdpLimit;
}
