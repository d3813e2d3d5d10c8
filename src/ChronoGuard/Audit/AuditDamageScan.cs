using System.Buffers.Binary;
using System.Globalization;

namespace ChronoGuard.Audit;

/// <summary>
/// Compares where a reader's scan of the log ended with what the commit metadata says was committed.
/// FASTER's recovery treats the first unreadable entry as the end of the log, so a flipped byte, a
/// shortened or missing segment reads as a shorter, valid log; this scan reads the segment files and
/// the commit files directly (FASTER's on-disk layout: per entry an 8-byte XOR checksum, a 4-byte length,
/// negative for commit records, the payload padded to 4 bytes; entries never span a page) and reports
/// damage when anything committed lies beyond the readable end.
/// </summary>
internal static class AuditDamageScan
{
    private const int HeaderBytes = 12;
    private const int SectorBytes = 512;
    private const int PageBits = 19;
    private const long PageSize = 1L << PageBits;

    // Largest entry the scan believes: a record is at most prefix + canonical, a commit record ~44 bytes.
    private const int MaxEntryBytes = 4096;

    /// <summary>
    /// Where and what. Readable: intact data entries between the reader's end and the damage (committed,
    /// so they are verified before the damage is reported). Salvaged: intact data entries found past it
    /// below the committed tail (for <c>export --salvage</c>), as (log address, entry payload).
    /// </summary>
    public sealed record Damage(string Where, string Problem)
    {
        public List<(long Address, byte[] Payload)> Readable { get; init; } = [];

        public List<(long Address, byte[] Payload)> Salvaged { get; init; } = [];
    }

    /// <summary>What one commit file or commit record says: the log was committed up to Until.</summary>
    public readonly record struct Claim(long Begin, long Until, long CommitNum, string Source);

    /// <summary>
    /// Null when nothing committed lies beyond <paramref name="readableEnd"/> (the address after the last
    /// entry the reader could read), else where the damage is and what it is.
    /// </summary>
    public static Damage? Check(string directory, int segmentBits, long readableEnd, IReadOnlySet<string>? present = null)
    {
        var claims = new List<Claim>();
        var commits = Path.Combine(directory, "log-commits");
        foreach (var file in Directory.Exists(commits) ? Directory.GetFiles(commits, "commit.*") : [])
        {
            var name = "log-commits/" + Path.GetFileName(file);
            var bytes = File.ReadAllBytes(file);
            if (bytes.Length < 4 || BinaryPrimitives.ReadInt32LittleEndian(bytes) is var size && (size < 0 || size > bytes.Length - 4))
            {
                return new Damage(name, "the commit file is damaged (its length prefix does not fit the file)");
            }

            if (!TryParseRecoveryInfo(bytes.AsSpan(4, size), exact: true, out var claim))
            {
                return new Damage(name, "the commit file is damaged (its checksum or layout does not verify)");
            }

            claims.Add(claim with { Source = name });
        }

        using var segments = new SegmentFiles(directory, segmentBits, present);
        var readable = new List<(long, byte[])>();
        var salvaged = new List<(long, byte[])>();
        var (end, why) = Walk(segments, readableEnd, claims, readable, salvaged);
        var committed = claims.Count == 0 ? 0 : claims.Max(c => c.Until);
        if (segments.Exists(end) && segments.Length(end) % SectorBytes != 0 && why.StartsWith("the data ends", StringComparison.Ordinal))
        {
            // FASTER writes whole sectors, so a crash leaves a segment a whole number of them long.
            return new Damage($"log address {end} ({segments.Describe(end)})", $"{why}, not a whole number of {SectorBytes}-byte sectors: the segment was cut, a crash cannot leave that") { Readable = readable };
        }

        if (committed <= end)
        {
            return null;
        }

        var source = claims.First(c => c.Until == committed).Source;
        return new Damage($"log address {end} ({segments.Describe(end)})", $"{why}, but {source} says the log was committed up to address {committed}: committed records cannot be read")
        {
            Readable = readable,
            Salvaged = salvaged.Where(e => e.Item1 < committed).ToList(),
        };
    }

    /// <summary>
    /// Walks valid entries from <paramref name="from"/> to the first unreadable one, collecting the commit
    /// records it passes; past that point it looks for intact commit records that prove more was committed.
    /// </summary>
    private static (long End, string Why) Walk(SegmentFiles segments, long from, List<Claim> claims, List<(long, byte[])> readable, List<(long, byte[])> salvaged)
    {
        var address = from;
        var header = new byte[HeaderBytes];
        string why;
        while (true)
        {
            if (!segments.Exists(address))
            {
                why = $"segment file {segments.Name(address)} is missing";
                break;
            }

            var got = segments.Read(address, header);
            var length = got < HeaderBytes ? 0 : BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(8));
            var offset = address & (PageSize - 1);
            if (length == 0)
            {
                if (offset == 0 || got < HeaderBytes)
                {
                    why = got < HeaderBytes ? $"the data ends ({segments.Name(address)} is {segments.Length(address)} bytes)" : "no data where an entry belongs";
                    break;
                }

                // The rest of a page is zero padding; entries resume on the next page.
                address = (address | (PageSize - 1)) + 1;
                continue;
            }

            var payload = Math.Abs((long)length);
            if (length == int.MinValue || offset + HeaderBytes + Align(payload) > PageSize)
            {
                why = "an entry with an impossible length";
                break;
            }

            var entry = new byte[HeaderBytes + payload];
            if (segments.Read(address, entry) < entry.Length || XorChecksum(entry.AsSpan(8)) != BinaryPrimitives.ReadUInt64LittleEndian(entry))
            {
                why = "an entry that fails its checksum";
                break;
            }

            if (length < 0 && TryParseRecoveryInfo(entry.AsSpan(HeaderBytes), exact: false, out var claim))
            {
                claims.Add(claim with { Source = $"the commit record at log address {address}" });
            }
            else if (length > 0)
            {
                readable.Add((address, entry[HeaderBytes..]));
            }

            address += HeaderBytes + Align(payload);
            if ((address & (PageSize - 1)) == 0 || PageSize - (address & (PageSize - 1)) < HeaderBytes)
            {
                address = ((address - 1) | (PageSize - 1)) + 1;
            }
        }

        // Past the unreadable entry nothing can be trusted to be aligned to an entry: look at every
        // 4-byte position for an intact commit record (a 64-bit checksum match by chance is negligible).
        // Read in blocks: a damaged first segment means scanning everything after it.
        const int Block = 1 << 20;
        var buffer = new byte[Block + HeaderBytes + MaxEntryBytes];
        for (var start = address + 4; start < segments.End;)
        {
            if (!segments.Exists(start))
            {
                start = ((start >> segments.Bits) + 1) << segments.Bits;
                continue;
            }

            var segmentEnd = ((start >> segments.Bits) + 1) << segments.Bits;
            var got = segments.Read(start, buffer, (int)Math.Min(buffer.Length, segmentEnd - start));
            var limit = (int)Math.Min(Block, segmentEnd - start);
            for (var i = 0; i < limit && i + HeaderBytes <= got; i += 4)
            {
                var length = BinaryPrimitives.ReadInt32LittleEndian(buffer.AsSpan(i + 8));
                var size = length < 0 ? -(long)length : length;
                if (length == 0 || length == int.MinValue || size > MaxEntryBytes || i + HeaderBytes + size > got
                    || ((start + i) & (PageSize - 1)) + HeaderBytes + Align(size) > PageSize)
                {
                    continue;
                }

                var entry = buffer.AsSpan(i, HeaderBytes + (int)size);
                if (XorChecksum(entry[8..]) != BinaryPrimitives.ReadUInt64LittleEndian(entry))
                {
                    continue;
                }

                if (length < 0 && TryParseRecoveryInfo(entry[HeaderBytes..], exact: false, out var claim))
                {
                    if (claim.Until > address)
                    {
                        claims.Add(claim with { Source = $"the intact commit record at log address {start + i}" });
                    }
                }
                else if (length > 0)
                {
                    salvaged.Add((start + i, entry[HeaderBytes..].ToArray()));
                }
                else
                {
                    continue;
                }

                // An intact entry: the next one starts after it (no need to look inside it).
                i += HeaderBytes + (int)Align(size) - 4;
            }

            start += limit;
        }

        return (address, why);
    }

    private static long Align(long n) => (n + 3) & ~3L;

    /// <summary>FASTER's per-entry checksum: XOR of the length field and payload as little-endian words, then bytes.</summary>
    private static ulong XorChecksum(ReadOnlySpan<byte> data)
    {
        ulong x = 0;
        var i = 0;
        for (; i + 8 <= data.Length; i += 8)
        {
            x ^= BinaryPrimitives.ReadUInt64LittleEndian(data[i..]);
        }

        for (; i < data.Length; i++)
        {
            x ^= data[i];
        }

        return x;
    }

    /// <summary>
    /// FasterLogRecoveryInfo: version, checksum, begin, until, commitNum, iterator count, iterators,
    /// cookie length, cookie; the checksum XORs begin, until, commitNum, counts and the cookie's XOR.
    /// With <paramref name="exact"/> the bytes must end where the structure does.
    /// </summary>
    private static bool TryParseRecoveryInfo(ReadOnlySpan<byte> b, bool exact, out Claim claim)
    {
        claim = default;
        if (b.Length < 44 || BinaryPrimitives.ReadInt32LittleEndian(b) != 1)
        {
            return false;
        }

        var checksum = BinaryPrimitives.ReadInt64LittleEndian(b[4..]);
        var begin = BinaryPrimitives.ReadInt64LittleEndian(b[12..]);
        var until = BinaryPrimitives.ReadInt64LittleEndian(b[20..]);
        var commitNum = BinaryPrimitives.ReadInt64LittleEndian(b[28..]);
        var iterators = BinaryPrimitives.ReadInt32LittleEndian(b[36..]);
        var p = 40;
        if (iterators < 0 || iterators > 1024)
        {
            return false;
        }

        for (var i = 0; i < iterators; i++)
        {
            if (p + 4 > b.Length || BinaryPrimitives.ReadInt32LittleEndian(b[p..]) is var n && (n < 0 || p + 4 + n + 8 > b.Length))
            {
                return false;
            }

            p += 4 + BinaryPrimitives.ReadInt32LittleEndian(b[p..]) + 8;
        }

        if (p + 4 > b.Length)
        {
            return false;
        }

        var cookieLength = BinaryPrimitives.ReadInt32LittleEndian(b[p..]);
        p += 4;
        long cookieXor = 0;
        if (cookieLength > 0)
        {
            if (p + cookieLength > b.Length)
            {
                return false;
            }

            cookieXor = (long)XorChecksum(b.Slice(p, cookieLength));
            p += cookieLength;
        }

        if ((exact && p != b.Length) || checksum != (begin ^ until ^ commitNum ^ iterators ^ cookieLength ^ cookieXor) || until < begin || begin < 0)
        {
            return false;
        }

        claim = new Claim(begin, until, commitNum, string.Empty);
        return true;
    }

    /// <summary>The segment files <c>audit.log.N</c> read by log address, kept open for the walk.</summary>
    private sealed class SegmentFiles(string directory, int bits, IReadOnlySet<string>? present) : IDisposable
    {
        private readonly Dictionary<long, FileStream?> _open = [];

        public int Bits => bits;

        /// <summary>The address after the highest segment file on disk.</summary>
        public long End { get; } = Directory.GetFiles(directory, "audit.log.*")
            .Select(f => long.TryParse(Path.GetExtension(f).AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n + 1 : 0)
            .DefaultIfEmpty(0).Max() << bits;

        public string Name(long address) => "audit.log." + (address >> bits).ToString(CultureInfo.InvariantCulture);

        public string Describe(long address) => $"{Name(address)} offset {address & ((1L << bits) - 1)}";

        public bool Exists(long address) => File(address) is not null;

        public long Length(long address) => File(address)?.Length ?? 0;

        public int Read(long address, byte[] into) => Read(address, into, into.Length);

        public int Read(long address, byte[] into, int count)
        {
            var file = File(address);
            if (file is null)
            {
                return 0;
            }

            file.Position = address & ((1L << bits) - 1);
            var total = 0;
            while (total < count)
            {
                var n = file.Read(into, total, count - total);
                if (n == 0)
                {
                    break;
                }

                total += n;
            }

            return total;
        }

        private FileStream? File(long address)
        {
            var segment = address >> bits;
            if (!_open.TryGetValue(segment, out var stream))
            {
                var path = Path.Combine(directory, "audit.log." + segment.ToString(CultureInfo.InvariantCulture));
                // A file FASTER's reader created itself (it opens missing segments) was missing before.
                stream = System.IO.File.Exists(path) && (present is null || present.Contains(Path.GetFileName(path))) ? new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete) : null;
                _open[segment] = stream;
            }

            return stream;
        }

        public void Dispose()
        {
            foreach (var stream in _open.Values)
            {
                stream?.Dispose();
            }
        }
    }
}
