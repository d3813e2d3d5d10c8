using System.Text;
using ChronoGuard.Resolution;

namespace ChronoGuard.Tests.Resolution;

public sealed class DnsWireTests
{
    [Fact]
    public void The_name_reader_agrees_with_a_naive_reader_on_random_and_mutated_messages()
    {
        var random = new Random(18);
        var text = new byte[DnsWire.MaxNameText];
        var accepted = 0;
        for (var round = 0; round < 200_000; round++)
        {
            var m = RandomNameBytes(random);
            var offset = random.Next(m.Length);
            var expected = NaiveNameReader.Read(m, offset);
            var at = offset;
            var ok = DnsWire.TryReadName(m, ref at, text, out var length);
            Assert.True(expected.Ok == ok, $"round {round}: {Convert.ToHexString(m)} at {offset}: naive {expected.Ok}, fast {ok}");
            if (ok)
            {
                accepted++;
                Assert.Equal(expected.Text, Encoding.Latin1.GetString(text, 0, length));
                Assert.Equal(expected.End, at);
            }
        }

        // The generator must reach both outcomes often, or the agreement proves little.
        Assert.InRange(accepted, 20_000, 180_000);
    }

    [Fact]
    public void Written_names_read_back_the_same_for_random_valid_names()
    {
        var random = new Random(7);
        var buffer = new byte[600];
        var text = new byte[DnsWire.MaxNameText];
        for (var round = 0; round < 20_000; round++)
        {
            var name = RandomName(random);
            var w = new DnsWriter(buffer);
            w.WriteName(Encoding.ASCII.GetBytes(name));
            Assert.False(w.Overflowed, name);
            var at = 0;
            Assert.True(DnsWire.TryReadName(buffer, ref at, text, out var length), name);
            Assert.Equal(name, Encoding.ASCII.GetString(text, 0, length));
            Assert.Equal(w.Position, at);
        }
    }

    [Fact]
    public void Compression_loops_are_refused_whatever_their_shape()
    {
        var text = new byte[DnsWire.MaxNameText];
        (byte[] Message, int[] Starts)[] loops =
        [
            ([0xC0, 0x00], [0]), // a pointer to itself
            ([0x01, (byte)'a', 0xC0, 0x00], [0, 2]), // a label, then back to it
            ([0xC0, 0x02, 0xC0, 0x00], [0, 2]), // two pointers to each other
            ([0x01, (byte)'a', 0x01, (byte)'b', 0xC0, 0x02], [0, 2, 4]), // back into the middle of its own name
        ];
        foreach (var (m, starts) in loops)
        {
            foreach (var start in starts)
            {
                var at = start;
                Assert.False(DnsWire.TryReadName(m, ref at, text, out _), $"{Convert.ToHexString(m)} from {start}");
            }
        }
    }

    [Theory]
    [InlineData(16, true)]
    [InlineData(17, false)]
    public void A_pointer_chain_is_followed_up_to_sixteen_pointers(int pointers, bool ok)
    {
        // The root at 0, then a chain where each pointer points at the one before.
        var m = new List<byte> { 0 };
        for (var i = 0; i < pointers; i++)
        {
            var target = i == 0 ? 0 : 1 + ((i - 1) * 2);
            m.Add((byte)(0xC0 | (target >> 8)));
            m.Add((byte)target);
        }

        var at = m.Count - 2;
        Assert.Equal(ok, DnsWire.TryReadName([.. m], ref at, new byte[DnsWire.MaxNameText], out _));
    }

    [Theory]
    [InlineData(63, true)]
    [InlineData(64, false)] // 0x40: the extended label type, never a length
    [InlineData(0x80, false)]
    [InlineData(0xBF, false)]
    public void Label_lengths_above_63_are_refused(int length, bool ok)
    {
        var m = new byte[1 + Math.Min(length, 63) + 1 + 200];
        m[0] = (byte)length;
        Array.Fill(m, (byte)'a', 1, m.Length - 2);
        m[^1] = 0;
        if (ok)
        {
            m[1 + length] = 0;
        }

        var at = 0;
        Assert.Equal(ok, DnsWire.TryReadName(m, ref at, new byte[DnsWire.MaxNameText], out _));
    }

    [Fact]
    public void A_name_of_255_wire_bytes_is_read_and_one_of_256_is_refused()
    {
        // 63+1 ×3 = 192, then 61+1 = 254, then the root: 255 bytes, 253 characters of text.
        var longest = string.Join('.', new string('a', 63), new string('b', 63), new string('c', 63), new string('d', 61));
        var m = new DnsMessages().Name(longest).ToArray();
        Assert.Equal(255, m.Length);
        var at = 0;
        var text = new byte[DnsWire.MaxNameText];
        Assert.True(DnsWire.TryReadName(m, ref at, text, out var length));
        Assert.Equal(253, length);

        var tooLong = new DnsMessages().Name(longest + "e").ToArray();
        at = 0;
        Assert.False(DnsWire.TryReadName(tooLong, ref at, text, out _));

        // The same length reached through a pointer is refused too: the bound is on the name, not on one run.
        var split = new DnsMessages().Name(string.Join('.', new string('c', 63), new string('d', 62))).Name(string.Join('.', new string('a', 63), new string('b', 63)), pointer: 0).ToArray();
        at = 65 + 63 + 1;
        Assert.False(DnsWire.TryReadName(split, ref at, text, out _));
    }

    [Fact]
    public void A_dot_inside_a_label_is_refused()
    {
        var m = new byte[] { 3, (byte)'a', (byte)'.', (byte)'b', 0 };
        var at = 0;
        Assert.False(DnsWire.TryReadName(m, ref at, new byte[DnsWire.MaxNameText], out _));
    }

    [Fact]
    public void Every_truncation_of_a_valid_message_is_refused_without_reading_past_it()
    {
        var m = Answer(0x1234, "www.example.com", DnsWire.TypeA, r => r
            .Record("", DnsWire.TypeCname, 300, d => d.Name("edge", pointer: 12), ownerPointer: 12)
            .Record("edge.example.com", DnsWire.TypeA, 60, d => d.Bytes(192, 0, 2, 1)));
        var text = new byte[DnsWire.MaxNameText];
        for (var cut = 0; cut < m.Length; cut++)
        {
            var part = m.AsSpan(0, cut).ToArray();
            var at = DnsWire.HeaderLength;
            var whole = cut >= DnsWire.HeaderLength
                && DnsWire.TryReadQuestion(part, ref at, text, out _, out _, out _)
                && DnsWire.TryReadRecord(part, ref at, text, out _, out _)
                && DnsWire.TryReadRecord(part, ref at, text, out _, out _);
            Assert.False(whole, $"cut at {cut}");
        }
    }

    /// <summary>A response with one question and the answers <paramref name="answers"/> adds (counted).</summary>
    internal static byte[] Answer(ushort id, string name, ushort type, Func<DnsMessages, DnsMessages> answers, int answerCount = 2, int rcode = 0, ushort extraFlags = 0)
    {
        var m = new DnsMessages().Header(id, (ushort)(0x8180 | rcode | extraFlags), 1, answerCount, 0, 0).Name(name).U16(type).U16(1);
        return answers(m).ToArray();
    }

    private static byte[] RandomNameBytes(Random random)
    {
        // Mostly well-formed pieces (labels, roots, pointers anywhere) so that both outcomes are common.
        var m = new List<byte>();
        var pieces = random.Next(1, 12);
        for (var p = 0; p < pieces; p++)
        {
            switch (random.Next(10))
            {
                case < 5:
                    var length = random.Next(10) == 0 ? random.Next(60, 70) : random.Next(1, 8);
                    m.Add((byte)length);
                    for (var i = 0; i < length; i++)
                    {
                        m.Add(random.Next(40) == 0 ? (byte)'.' : (byte)random.Next('a', 'z' + 1));
                    }

                    break;
                case < 7:
                    m.Add(0);
                    break;
                case < 9:
                    var target = random.Next(Math.Max(1, m.Count + 2));
                    m.Add((byte)(0xC0 | (target >> 8)));
                    m.Add((byte)target);
                    break;
                default:
                    m.Add((byte)random.Next(256));
                    break;
            }
        }

        if (random.Next(3) > 0)
        {
            m.Add(0);
        }

        return [.. m];
    }

    private static string RandomName(Random random)
    {
        var labels = new List<string>();
        var wire = 1;
        var count = random.Next(0, 8);
        for (var i = 0; i < count; i++)
        {
            var length = random.Next(1, random.Next(4) == 0 ? 64 : 12);
            if (wire + length + 1 > 255)
            {
                break;
            }

            wire += length + 1;
            labels.Add(new string([.. Enumerable.Range(0, length).Select(_ => "abcdefghijklmnopqrstuvwxyz0123456789-_"[random.Next(38)])]));
        }

        return string.Join('.', labels);
    }
}
