using System.Security.Cryptography;

namespace ChronoGuard.Tests.Support;

internal static class TestData
{
    public static byte[] Bytes(long length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    public static string Sha256(ReadOnlySpan<byte> data) => Convert.ToHexStringLower(SHA256.HashData(data));
}
