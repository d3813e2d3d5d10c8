using System.Buffers;
using System.Text;
using ChronoGuard.Http;

namespace ChronoGuard.Tests.Http;

public sealed class ChunkedScannerTests
{
    private enum Verdict
    {
        Complete,
        Incomplete,
        Error,
    }

    [Fact]
    public void Random_bodies_and_mutations_agree_with_a_whole_buffer_reference_decoder()
    {
        var random = new Random(20261122);
        for (var i = 0; i < 5000; i++)
        {
            var body = RandomChunkedBody(random);
            var trailing = random.Next(3) == 0 ? "GET next request"u8.ToArray() : [];
            var input = body.Concat(trailing).ToArray();
            if (i % 2 == 1)
            {
                Mutate(random, ref input);
            }

            var expected = Reference(input, out var expectedLength);
            var actual = Scan(input, random, out var actualLength);
            Assert.True(expected == actual, $"case {i}: reference {expected}, scanner {actual} for {Escape(input)}");
            if (expected == Verdict.Complete)
            {
                Assert.Equal(expectedLength, actualLength);
            }
        }
    }

    [Theory]
    [InlineData("10000000000000000\r\n")]
    [InlineData("-1\r\n")]
    [InlineData("5\r\nhelloX\r\n")]
    [InlineData("5\nhello\r\n")]
    [InlineData("0\r\nX: a\rb\r\n\r\n")]
    [InlineData(" 5\r\nhello\r\n0\r\n\r\n")]
    public void Smuggling_shapes_are_errors(string input)
    {
        Assert.Equal(Verdict.Error, Scan(Encoding.ASCII.GetBytes(input), new Random(1), out _));
    }

    private static Verdict Scan(byte[] input, Random random, out long consumedTotal)
    {
        var scanner = default(ChunkedScanner);
        consumedTotal = 0;
        var offset = 0;
        while (offset < input.Length && !scanner.IsDone)
        {
            var take = Math.Min(input.Length - offset, random.Next(1, 40));
            var error = scanner.Scan(new ReadOnlySequence<byte>(input, offset, take), out var consumed);
            consumedTotal += consumed;
            if (error != ParseError.None)
            {
                return Verdict.Error;
            }

            // What the scanner did not consume is offered again, as a PipeReader would.
            offset += (int)consumed;
            if (consumed == 0 && !scanner.IsDone)
            {
                throw new InvalidOperationException("scanner made no progress");
            }
        }

        return scanner.IsDone ? Verdict.Complete : Verdict.Incomplete;
    }

    /// <summary>A strict decoder over the whole input, written independently of the scanner's state machine.</summary>
    private static Verdict Reference(byte[] s, out long length)
    {
        length = 0;
        var pos = 0;
        while (true)
        {
            var digits = 0;
            long size = 0;
            while (pos + digits < s.Length && Uri.IsHexDigit((char)s[pos + digits]))
            {
                size = (size << 4) | (long)Convert.ToInt32(((char)s[pos + digits]).ToString(), 16);
                digits++;
                if (digits > 15)
                {
                    return Verdict.Error;
                }
            }

            if (pos + digits >= s.Length)
            {
                return Verdict.Incomplete;
            }

            if (digits == 0)
            {
                return Verdict.Error;
            }

            pos += digits;
            if (s[pos] == ';')
            {
                pos++;
                while (pos < s.Length && s[pos] != '\r')
                {
                    if (IsCtl(s[pos]))
                    {
                        return Verdict.Error;
                    }

                    pos++;
                }
            }

            if (pos >= s.Length)
            {
                return Verdict.Incomplete;
            }

            if (s[pos] != '\r')
            {
                return Verdict.Error;
            }

            if (pos + 1 >= s.Length)
            {
                return Verdict.Incomplete;
            }

            if (s[pos + 1] != '\n')
            {
                return Verdict.Error;
            }

            pos += 2;
            if (size == 0)
            {
                break;
            }

            if (pos + size + 2 > s.Length)
            {
                // Data may be cut anywhere; but CRLF after complete data is checked as far as present.
                if (pos + size < s.Length && s[(int)(pos + size)] != '\r')
                {
                    return Verdict.Error;
                }

                return Verdict.Incomplete;
            }

            pos += (int)size;
            if (s[pos] != '\r' || s[pos + 1] != '\n')
            {
                return Verdict.Error;
            }

            pos += 2;
        }

        // Trailer section: header-ish lines until an empty line.
        while (true)
        {
            if (pos >= s.Length)
            {
                return Verdict.Incomplete;
            }

            var lineStart = pos;
            while (pos < s.Length && s[pos] != '\r')
            {
                if (IsCtl(s[pos]))
                {
                    return Verdict.Error;
                }

                pos++;
            }

            if (pos + 1 >= s.Length)
            {
                return Verdict.Incomplete;
            }

            if (s[pos + 1] != '\n')
            {
                return Verdict.Error;
            }

            pos += 2;
            if (pos - 2 == lineStart)
            {
                length = pos;
                return Verdict.Complete;
            }
        }
    }

    private static bool IsCtl(byte b) => (b < 0x20 && b != '\t') || b == 0x7F;

    private static byte[] RandomChunkedBody(Random random)
    {
        var sb = new List<byte>();
        var chunks = random.Next(0, 5);
        for (var c = 0; c < chunks; c++)
        {
            var size = random.Next(1, 300);
            var hex = size.ToString(random.Next(2) == 0 ? "x" : "X", System.Globalization.CultureInfo.InvariantCulture);
            sb.AddRange(Encoding.ASCII.GetBytes(new string('0', random.Next(3)) + hex));
            if (random.Next(4) == 0)
            {
                sb.AddRange(";ext=\"v\""u8.ToArray());
            }

            sb.AddRange("\r\n"u8.ToArray());
            var data = new byte[size];
            random.NextBytes(data);
            sb.AddRange(data);
            sb.AddRange("\r\n"u8.ToArray());
        }

        sb.AddRange("0\r\n"u8.ToArray());
        if (random.Next(3) == 0)
        {
            sb.AddRange("X-Trailer: yes\r\n"u8.ToArray());
        }

        sb.AddRange("\r\n"u8.ToArray());
        return sb.ToArray();
    }

    private static void Mutate(Random random, ref byte[] input)
    {
        var list = input.ToList();
        var at = random.Next(list.Count);
        byte[] interesting = [(byte)'\r', (byte)'\n', (byte)';', (byte)'0', (byte)'a', (byte)'G', 0, (byte)' '];
        switch (random.Next(3))
        {
            case 0:
                list[at] = interesting[random.Next(interesting.Length)];
                break;
            case 1:
                list.Insert(at, interesting[random.Next(interesting.Length)]);
                break;
            default:
                list.RemoveAt(at);
                break;
        }

        input = list.ToArray();
    }

    private static string Escape(byte[] input) =>
        Encoding.Latin1.GetString(input.Take(200).ToArray()).Replace("\r", "\\r", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
}
