using System.Buffers.Binary;
using System.Text;

namespace ChronoGuard.Tests.Resolution;

/// <summary>Hand-built DNS messages for the codec tests: names written label by label, pointers where asked.</summary>
internal sealed class DnsMessages
{
    private readonly List<byte> _bytes = [];

    public int Length => _bytes.Count;

    public static byte[] Query(ushort id, string name, ushort type, bool rd = true) =>
        new DnsMessages().Header(id, (ushort)(rd ? 0x0100 : 0), 1, 0, 0, 0).Name(name).U16(type).U16(1).ToArray();

    public DnsMessages Header(ushort id, ushort flags, int qd, int an, int ns, int ar) =>
        U16(id).U16(flags).U16((ushort)qd).U16((ushort)an).U16((ushort)ns).U16((ushort)ar);

    public DnsMessages U16(ushort v)
    {
        _bytes.Add((byte)(v >> 8));
        _bytes.Add((byte)v);
        return this;
    }

    public DnsMessages U32(uint v) => U16((ushort)(v >> 16)).U16((ushort)v);

    public DnsMessages Bytes(params byte[] b)
    {
        _bytes.AddRange(b);
        return this;
    }

    /// <summary>A name; <paramref name="pointer"/> ends it with a pointer instead of the root.</summary>
    public DnsMessages Name(string name, int pointer = -1)
    {
        foreach (var label in name.Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            _bytes.Add((byte)label.Length);
            _bytes.AddRange(Encoding.ASCII.GetBytes(label));
        }

        return pointer >= 0 ? U16((ushort)(0xC000 | pointer)) : Bytes(0);
    }

    /// <summary>A record with its data built by <paramref name="data"/> (the length is filled in).</summary>
    public DnsMessages Record(string owner, ushort type, uint ttl, Action<DnsMessages> data, int ownerPointer = -1)
    {
        if (ownerPointer >= 0 && owner.Length == 0)
        {
            U16((ushort)(0xC000 | ownerPointer));
        }
        else
        {
            Name(owner, ownerPointer);
        }

        U16(type).U16(1).U32(ttl);
        var at = _bytes.Count;
        U16(0);
        data(this);
        var length = _bytes.Count - at - 2;
        _bytes[at] = (byte)(length >> 8);
        _bytes[at + 1] = (byte)length;
        return this;
    }

    public byte[] ToArray() => [.. _bytes];

    public static ushort ReadU16(byte[] m, int at) => BinaryPrimitives.ReadUInt16BigEndian(m.AsSpan(at));
}
