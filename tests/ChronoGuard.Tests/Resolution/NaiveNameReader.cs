using System.Text;

namespace ChronoGuard.Tests.Resolution;

/// <summary>
/// The name rules of DnsWire written the slow, obvious way (every byte position kept in a list, the
/// text in a StringBuilder), so a randomized test can hold the fast reader to them.
/// </summary>
internal static class NaiveNameReader
{
    public static (bool Ok, string Text, int End) Read(byte[] m, int offset)
    {
        var seen = new List<int>();
        var labels = new List<string>();
        var pos = offset;
        var end = -1;
        var pointers = 0;
        var wire = 1;
        while (true)
        {
            if (pos < 0 || pos >= m.Length)
            {
                return (false, "", 0);
            }

            seen.Add(pos);
            var b = m[pos];
            if (b == 0)
            {
                return (true, string.Join('.', labels), end >= 0 ? end : pos + 1);
            }

            if (b >= 0xC0)
            {
                if (pos + 1 >= m.Length)
                {
                    return (false, "", 0);
                }

                pointers++;
                if (pointers > 16)
                {
                    return (false, "", 0);
                }

                var target = ((b & 0x3F) * 256) + m[pos + 1];
                if (end < 0)
                {
                    end = pos + 2;
                }

                if (target >= Math.Min(seen.Min(), offset))
                {
                    return (false, "", 0);
                }

                pos = target;
                continue;
            }

            if (b >= 64)
            {
                return (false, "", 0);
            }

            wire += b + 1;
            if (wire > 255 || pos + 1 + b > m.Length)
            {
                return (false, "", 0);
            }

            var label = m.AsSpan(pos + 1, b).ToArray();
            if (label.Contains((byte)'.'))
            {
                return (false, "", 0);
            }

            for (var i = pos; i <= pos + b; i++)
            {
                seen.Add(i);
            }

            labels.Add(Encoding.Latin1.GetString(label));
            pos += 1 + b;
        }
    }
}
