using System.Buffers;

namespace ChronoGuard.Tests.Http;

/// <summary>Builds a ReadOnlySequence whose segments end at the given offsets, as a pipe hands over reads.</summary>
internal static class Segments
{
    public static ReadOnlySequence<byte> Split(byte[] data, params int[] cuts)
    {
        Chunk? first = null;
        Chunk? last = null;
        var start = 0;
        for (var i = 0; i <= cuts.Length; i++)
        {
            var end = i < cuts.Length ? cuts[i] : data.Length;
            // Each segment gets its own array so no parser can read across a boundary by accident.
            var piece = data.AsSpan(start, end - start).ToArray();
            var chunk = new Chunk(piece);
            if (first is null)
            {
                first = chunk;
            }
            else
            {
                last!.Append(chunk);
            }

            last = chunk;
            start = end;
        }

        return new ReadOnlySequence<byte>(first!, 0, last!, last!.Memory.Length);
    }

    private sealed class Chunk : ReadOnlySequenceSegment<byte>
    {
        public Chunk(byte[] data)
        {
            Memory = data;
        }

        public void Append(Chunk next)
        {
            next.RunningIndex = RunningIndex + Memory.Length;
            Next = next;
        }
    }
}
