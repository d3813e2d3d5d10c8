using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace ChronoGuard.Resolution;

/// <summary>An address as 128 bits, IPv4 in its mapped form (<c>::ffff:a.b.c.d</c>) so both spellings of one address are one key.</summary>
internal static class AddressKey
{
    public static UInt128 Of(IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[16];
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            address.TryWriteBytes(bytes[12..], out _);
            return FromV4(bytes[12..]);
        }

        address.TryWriteBytes(bytes, out _);
        return BinaryPrimitives.ReadUInt128BigEndian(bytes);
    }

    public static UInt128 FromV4(ReadOnlySpan<byte> four) => ((UInt128)0xFFFF << 32) | BinaryPrimitives.ReadUInt32BigEndian(four);

    public static UInt128 FromV6(ReadOnlySpan<byte> sixteen) => BinaryPrimitives.ReadUInt128BigEndian(sixteen);
}
