using System.Buffers;
using System.Text;
using ChronoGuard.Http;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Http;

public sealed class ChunkedScannerTests
{
    [Theory]
    // Sizes: more than 16 hex digits (leading zeros count), or past 2^63 - 1, at the digit that overflows.
    [InlineData("10000000000000000\r\n", "chunk_size_too_large", 16)]
    [InlineData("00000000000000005\r\n", "chunk_size_too_large", 16)]
    [InlineData("000000000000000000000000000000005\r\n", "chunk_size_too_large", 16)]
    [InlineData("8000000000000000\r\n", "chunk_size_too_large", 15)]
    [InlineData("ffffffffffffffffff\r\n", "chunk_size_too_large", 15)]
    [InlineData("5\r\nhello\r\n10000000000000000\r\n", "chunk_size_too_large", 26)]
    // Sizes that are not hex, or lead with whitespace or a sign.
    [InlineData(" 5\r\nhello\r\n0\r\n\r\n", "bad_chunk_size", 0)]
    [InlineData("\t5\r\nhello\r\n0\r\n\r\n", "bad_chunk_size", 0)]
    [InlineData("5\r\nhello\r\n 0\r\n\r\n", "bad_chunk_size", 10)]
    [InlineData("-1\r\n", "bad_chunk_size", 0)]
    [InlineData("+5\r\n", "bad_chunk_size", 0)]
    [InlineData("0x5\r\n", "bad_chunk_size", 1)]
    [InlineData("5g\r\n", "bad_chunk_size", 1)]
    [InlineData("\r\n", "bad_chunk_size", 0)]
    [InlineData("5 \r\nhello\r\n", "bad_chunk_size", 2)]
    [InlineData("5\t\t\r\nhello\r\n", "bad_chunk_size", 3)]
    [InlineData("5 x\r\n", "bad_chunk_size", 2)]
    // Bare LF and bare CR anywhere in the framing.
    [InlineData("\n", "chunk_bare_lf", 0)]
    [InlineData("5\nhello\r\n", "chunk_bare_lf", 1)]
    [InlineData("5 \n", "chunk_bare_lf", 2)]
    [InlineData("5;a\n", "chunk_bare_lf", 3)]
    [InlineData("5;a=b\n", "chunk_bare_lf", 5)]
    [InlineData("5;a=\"x\ny\"\r\n", "chunk_bare_lf", 6)]
    [InlineData("5;\n", "chunk_bare_lf", 2)]
    [InlineData("5\r\nhello\n", "chunk_bare_lf", 8)]
    [InlineData("0\r\n\n", "chunk_bare_lf", 3)]
    [InlineData("0\r\nX: a\nY: b\r\n\r\n", "chunk_bare_lf", 7)]
    [InlineData("0\r\nX\n", "chunk_bare_lf", 4)]
    [InlineData("5\rhello", "chunk_bare_cr", 2)]
    [InlineData("5;a=b\rX", "chunk_bare_cr", 6)]
    [InlineData("5\r\nhello\rX", "chunk_bare_cr", 9)]
    [InlineData("0\r\n\rX", "chunk_bare_cr", 4)]
    [InlineData("0\r\nX: a\rb\r\n\r\n", "chunk_bare_cr", 8)]
    // More data than the size.
    [InlineData("5\r\nhelloX\r\n", "chunk_data_overrun", 8)]
    [InlineData("1\r\nab\r\n0\r\n\r\n", "chunk_data_overrun", 4)]
    [InlineData("0\r\n\r\n", "complete", 5)]
    // Extensions: ;name[=token|quoted-string], with BWS only around ';' and '='.
    [InlineData("5;\r\n", "bad_chunk_extension", 2)]
    [InlineData("5;;a\r\n", "bad_chunk_extension", 2)]
    [InlineData("5;a=\r\n", "bad_chunk_extension", 4)]
    [InlineData("5;a b\r\n", "bad_chunk_extension", 4)]
    [InlineData("5;a \r\n", "bad_chunk_extension", 4)]
    [InlineData("5;a=b \r\n", "bad_chunk_extension", 6)]
    [InlineData("5;a=b,c\r\n", "bad_chunk_extension", 5)]
    [InlineData("5;a=b c\r\n", "bad_chunk_extension", 6)]
    [InlineData("5;(x)\r\n", "bad_chunk_extension", 2)]
    [InlineData("5;a=\"x\r\n", "bad_chunk_extension", 6)]
    [InlineData("5;a=\"\u0000\"\r\n", "bad_chunk_extension", 5)]
    [InlineData("5;a=\"\u007f\"\r\n", "bad_chunk_extension", 5)]
    [InlineData("5;a=\"\\\u0001\"\r\n", "bad_chunk_extension", 6)]
    [InlineData("5;a=\"x\"y\r\n", "bad_chunk_extension", 7)]
    [InlineData("5;a=\u00e9\r\n", "bad_chunk_extension", 4)]
    [InlineData("5;a\u0000\r\n", "bad_chunk_extension", 3)]
    // Trailers: field lines, no obs-fold, no whitespace before the colon, no control bytes.
    [InlineData("0\r\n X: y\r\n\r\n", "bad_trailer", 3)]
    [InlineData("0\r\nX: a\r\n\tb\r\n\r\n", "bad_trailer", 9)]
    [InlineData("0\r\nX : y\r\n\r\n", "bad_trailer", 4)]
    [InlineData("0\r\nX\r\n\r\n", "bad_trailer", 4)]
    [InlineData("0\r\n: y\r\n\r\n", "bad_trailer", 3)]
    [InlineData("0\r\nX: a\u0000\r\n\r\n", "bad_trailer", 7)]
    [InlineData("0\r\nX(: a\r\n\r\n", "bad_trailer", 4)]
    [InlineData("0\r\nGET / HTTP/1.1\r\n\r\n", "bad_trailer", 6)]
    public void Each_malformed_shape_is_refused_at_its_first_bad_byte(string input, string reason, int position)
    {
        var bytes = Encoding.Latin1.GetBytes(input);
        var reference = ChunkedReference.Decode(bytes);
        Assert.Equal((reason, (long)position), (reference.Outcome, reference.Position));
        for (var cut = 0; cut <= bytes.Length; cut++)
        {
            Assert.Equal((reason, (long)position), ScanWhole(Segments.Split(bytes, cut)));
            Assert.Equal((reason, (long)position), ScanAsPipe(bytes, [cut]));
        }
    }

    [Theory]
    [InlineData("5\r\nhello\r\n0\r\n\r\n")]
    [InlineData("5;a\r\nhello\r\n0\r\n\r\n")]
    [InlineData("5;a=b;c=\"d e\\\"f\\\\\"\r\nhello\r\n0\r\n\r\n")]
    [InlineData("5 ; a = b\t;\tc\r\nhello\r\n0;x=y\r\n\r\n")]
    [InlineData("5;a=\"caf\u00e9\"\r\nhello\r\n0\r\n\r\n")]
    [InlineData("0000000000000005\r\nhello\r\n0000000000000000\r\n\r\n")]
    [InlineData("A\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n")]
    [InlineData("5\r\nhello\r\n0\r\nX-Sum: abc\r\nY:\r\nZ: a\tb caf\u00e9\r\n\r\n")]
    public void Valid_bodies_complete_with_their_decoded_data(string input)
    {
        var bytes = Encoding.Latin1.GetBytes(input + "GET next");
        var reference = ChunkedReference.Decode(bytes);
        Assert.Equal((ChunkedReference.Complete, (long)input.Length), (reference.Outcome, reference.Position));
        Assert.Equal(reference.Body, DecodeByteByByte(bytes, out var outcome));
        Assert.Equal((ChunkedReference.Complete, (long)input.Length), outcome);
        for (var cut = 0; cut <= bytes.Length; cut++)
        {
            Assert.Equal((ChunkedReference.Complete, (long)input.Length), ScanWhole(Segments.Split(bytes, cut)));
        }
    }

    [Fact]
    public void The_largest_size_is_accepted_and_waits_for_its_data()
    {
        var bytes = "7fffffffffffffff\r\nabc"u8.ToArray();
        Assert.Equal((ChunkedReference.Incomplete, (long)bytes.Length), ScanWhole(new ReadOnlySequence<byte>(bytes)));
    }

    [Fact]
    public void Extensions_are_bounded_per_line_and_per_body()
    {
        var line = Encoding.ASCII.GetBytes("1;" + new string('a', ChunkedScanner.MaxExtensionBytesPerLine - 1) + "\r\nx\r\n");
        Assert.Equal((ChunkedReference.Complete, (long)line.Length + 5), ScanWhole(new ReadOnlySequence<byte>([.. line, .. "0\r\n\r\n"u8])));

        var tooLong = Encoding.ASCII.GetBytes("1;" + new string('a', ChunkedScanner.MaxExtensionBytesPerLine) + "\r\nx\r\n");
        Assert.Equal(("chunk_extension_too_long", (long)ChunkedScanner.MaxExtensionBytesPerLine + 1), ScanWhole(new ReadOnlySequence<byte>(tooLong)));

        // Each line within its bound, the body over its own: refused in the 17th line.
        var body = new List<byte>();
        for (var i = 0; i < 17; i++)
        {
            body.AddRange(line);
        }

        body.AddRange("0\r\n\r\n"u8.ToArray());
        var bytes = body.ToArray();
        var reference = ChunkedReference.Decode(bytes);
        Assert.Equal("chunk_extension_too_long", reference.Outcome);
        Assert.InRange(reference.Position, 16 * line.Length, 17 * line.Length);
        Assert.Equal((reference.Outcome, reference.Position), ScanWhole(new ReadOnlySequence<byte>(bytes)));
        Assert.Equal((reference.Outcome, reference.Position), ScanAsPipe(bytes, [1000, 30000, 60000]));
    }

    [Fact]
    public void Trailers_are_bounded()
    {
        var fits = Encoding.ASCII.GetBytes("0\r\nX: " + new string('a', ChunkedScanner.MaxTrailerBytes - 6) + "\r\n\r\n");
        Assert.Equal((ChunkedReference.Complete, (long)fits.Length), ScanWhole(new ReadOnlySequence<byte>(fits)));

        var over = Encoding.ASCII.GetBytes("0\r\nX: " + new string('a', ChunkedScanner.MaxTrailerBytes) + "\r\n\r\n");
        Assert.Equal(("trailer_too_large", 3L + ChunkedScanner.MaxTrailerBytes), ScanWhole(new ReadOnlySequence<byte>(over)));
        Assert.Equal(431, ParseErrors.StatusCode(ParseError.TrailerTooLarge));
    }

    [Fact]
    public void Random_bodies_and_mutations_agree_with_the_reference_decoder()
    {
        var random = new Random(20261201);
        var seen = new Dictionary<string, int>();
        for (var i = 0; i < 6000; i++)
        {
            var input = RandomBody(random);
            if (random.Next(3) == 0)
            {
                input = [.. input, .. "GET next request"u8];
            }

            var mutations = i % 3 == 0 ? 0 : random.Next(1, 4);
            for (var m = 0; m < mutations; m++)
            {
                Mutate(random, ref input);
            }

            var reference = ChunkedReference.Decode(input);
            var expected = (reference.Outcome, reference.Position);
            var context = $"case {i}: {Escape(input)}";
            seen[reference.Outcome] = seen.GetValueOrDefault(reference.Outcome) + 1;

            Assert.True(expected == ScanWhole(new ReadOnlySequence<byte>(input)), $"whole, {context}: reference {expected}");
            var cuts = RandomCuts(random, input.Length);
            Assert.True(expected == ScanWhole(Segments.Split(input, cuts)), $"segments, {context}");
            Assert.True(expected == ScanAsPipe(input, cuts), $"pipe, {context}");
            var body = DecodeByteByByte(input, out var outcome);
            Assert.True(expected == outcome, $"byte by byte, {context}");
            Assert.True(reference.Body.AsSpan().SequenceEqual(body), $"decoded body, {context}");

            if (i < 400)
            {
                for (var cut = 0; cut <= input.Length; cut++)
                {
                    Assert.True(expected == ScanWhole(Segments.Split(input, cut)), $"cut at {cut}, {context}");
                }
            }
        }

        // The generator must reach the outcomes it is meant to compare, or the comparison proves little.
        string[] required = [ChunkedReference.Complete, ChunkedReference.Incomplete, "bad_chunk_size", "chunk_bare_lf", "chunk_bare_cr",
            "chunk_data_overrun", "bad_chunk_extension", "bad_trailer", "chunk_size_too_large"];
        foreach (var outcome in required)
        {
            Assert.True(seen.GetValueOrDefault(outcome) >= 10, $"{outcome}: {seen.GetValueOrDefault(outcome)} of 6000 ({string.Join(", ", seen)})");
        }
    }

    [Fact]
    public void Scanning_allocates_nothing()
    {
        var bytes = "5;a=\"b\"\r\nhello\r\n10\r\n0123456789abcdef\r\n0\r\nX: y\r\n\r\n"u8.ToArray();
        var input = Segments.Split(bytes, 3, 11, 30);
        var bad = Segments.Split("5\r\nhelloX"u8.ToArray(), 4);
        Assert.Equal((ChunkedReference.Complete, (long)bytes.Length), ScanWhole(input));
        Assert.Equal(0, Allocations.Least(() =>
        {
            var scanner = default(ChunkedScanner);
            scanner.Scan(input, out _);
            scanner = default;
            scanner.Scan(bad, out _);
        }));
    }

    /// <summary>One Scan over the whole input: the outcome and, on an error, the offset of the bad byte.</summary>
    private static (string, long) ScanWhole(ReadOnlySequence<byte> input)
    {
        var scanner = default(ChunkedScanner);
        var error = scanner.Scan(input, out var consumed);
        return Outcome(scanner, error, consumed, input.Length);
    }

    /// <summary>
    /// The forwarder's loop: each read offers the unconsumed bytes again plus what arrived; the scanner
    /// must consume all it is offered until the body ends or a byte is bad.
    /// </summary>
    private static (string, long) ScanAsPipe(byte[] input, int[] arrivals)
    {
        var scanner = default(ChunkedScanner);
        long offset = 0;
        foreach (var arrived in arrivals.Where(a => a <= input.Length).Append(input.Length))
        {
            if (arrived < offset)
            {
                continue;
            }

            var offered = new ReadOnlySequence<byte>(input, (int)offset, arrived - (int)offset);
            var error = scanner.Scan(offered, out var consumed);
            if (error != ParseError.None || scanner.IsDone)
            {
                return Outcome(scanner, error, offset + consumed, input.Length);
            }

            Assert.Equal(offered.Length, consumed);
            offset += consumed;
        }

        return Outcome(scanner, ParseError.None, offset, input.Length);
    }

    /// <summary>Feeds one byte at a time and keeps the bytes the scanner says are chunk data.</summary>
    private static byte[] DecodeByteByByte(byte[] input, out (string, long) outcome)
    {
        var scanner = default(ChunkedScanner);
        var body = new List<byte>();
        for (var i = 0; i < input.Length; i++)
        {
            var isData = scanner.InData;
            var error = scanner.Scan(new ReadOnlySequence<byte>(input, i, 1), out var consumed);
            if (error != ParseError.None || scanner.IsDone && consumed == 0)
            {
                outcome = Outcome(scanner, error, i + consumed, input.Length);
                return body.ToArray();
            }

            if (isData)
            {
                body.Add(input[i]);
            }

            if (scanner.IsDone)
            {
                outcome = Outcome(scanner, error, i + 1, input.Length);
                return body.ToArray();
            }
        }

        outcome = Outcome(scanner, ParseError.None, input.Length, input.Length);
        return body.ToArray();
    }

    private static (string, long) Outcome(ChunkedScanner scanner, ParseError error, long consumed, long length)
    {
        if (error != ParseError.None)
        {
            return (ParseErrors.Reason(error), consumed);
        }

        Assert.True(scanner.IsDone || consumed == length, "an unfinished body must consume all it is offered");
        return scanner.IsDone ? (ChunkedReference.Complete, consumed) : (ChunkedReference.Incomplete, consumed);
    }

    private static int[] RandomCuts(Random random, int length)
    {
        var cuts = new int[random.Next(0, 6)];
        for (var i = 0; i < cuts.Length; i++)
        {
            cuts[i] = random.Next(0, length + 1);
        }

        Array.Sort(cuts);
        return cuts;
    }

    private static byte[] RandomBody(Random random)
    {
        var sb = new List<byte>();
        var chunks = random.Next(0, 5);
        for (var c = 0; c <= chunks; c++)
        {
            var last = c == chunks;
            var size = last ? 0 : random.Next(1, 300);
            var hex = size.ToString(random.Next(2) == 0 ? "x" : "X", System.Globalization.CultureInfo.InvariantCulture);
            // Now and then padded up to and past the 16-digit bound, or a size no body can have.
            var zeros = random.Next(10) == 0 ? random.Next(12, 18) : random.Next(3);
            sb.AddRange(Encoding.ASCII.GetBytes(random.Next(200) == 0 ? Pick(random, "7fffffffffffffff", "8000000000000000", "fffffffffffffffff") : new string('0', zeros) + hex));
            var extensions = random.Next(4) == 0 ? random.Next(1, 4) : 0;
            for (var e = 0; e < extensions; e++)
            {
                sb.AddRange(Encoding.Latin1.GetBytes(Bws(random) + ";" + Bws(random) + Pick(random, "a", "ext", "x-y", "n!#$%&'*+-.^_`|~")));
                switch (random.Next(3))
                {
                    case 0:
                        break;
                    case 1:
                        sb.AddRange(Encoding.Latin1.GetBytes(Bws(random) + "=" + Bws(random) + Pick(random, "v", "1", "tok.en")));
                        break;
                    default:
                        sb.AddRange(Encoding.Latin1.GetBytes(Bws(random) + "=" + Bws(random) + Pick(random, "\"\"", "\"v\"", "\"a b\\\"c\\\\\"", "\"caf\u00e9;=,\"", "\"\t\"")));
                        break;
                }
            }

            sb.AddRange("\r\n"u8.ToArray());
            if (!last)
            {
                var data = new byte[size];
                random.NextBytes(data);
                // Framing bytes inside data must be skipped as data.
                if (size > 2 && random.Next(3) == 0)
                {
                    data[random.Next(size)] = (byte)'\r';
                    data[random.Next(size)] = (byte)'\n';
                }

                sb.AddRange(data);
                sb.AddRange("\r\n"u8.ToArray());
            }
        }

        var trailers = random.Next(3) == 0 ? random.Next(1, 3) : 0;
        for (var t = 0; t < trailers; t++)
        {
            sb.AddRange(Encoding.Latin1.GetBytes(Pick(random, "X-Trailer", "Digest", "a") + ":" + Pick(random, "", " yes", "\tv\t", " caf\u00e9") + "\r\n"));
        }

        sb.AddRange("\r\n"u8.ToArray());
        return sb.ToArray();
    }

    private static string Bws(Random random) => random.Next(4) == 0 ? Pick(random, " ", "\t", "  ") : "";

    private static string Pick(Random random, params string[] options) => options[random.Next(options.Length)];

    private static void Mutate(Random random, ref byte[] input)
    {
        var list = input.ToList();
        var at = random.Next(list.Count);
        byte[] interesting = [(byte)'\r', (byte)'\n', (byte)';', (byte)'=', (byte)'"', (byte)'\\', (byte)'0', (byte)'f', (byte)'G', 0, 0x7F, 0xE9, (byte)' ', (byte)'\t', (byte)':'];
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
