using System.Buffers.Binary;
using System.Globalization;

namespace ChronoGuard.Audit;

/// <summary>
/// FASTER's files in an audit directory, read directly by their on-disk layout rather than through
/// FASTER (whose recovery takes the first unreadable entry for the end of the log): the commit files
/// <c>log-commits/commit.*</c> (a 4-byte length, then FasterLogRecoveryInfo) and the segment files
/// <c>audit.log.N</c> by log address (per entry an 8-byte XOR checksum, a 4-byte length, negative for
/// commit records, the payload padded to 4 bytes; entries never span a page). Only bytes: what they
/// mean for the log is <see cref="AuditLogScan"/>'s to say.
/// </summary>
internal sealed class FasterLogFiles(string directory, int bits) : IDisposable
{
    public const string CommitsFolder = "log-commits";

    private const string SegmentPrefix = "audit.log.";
    private const int HeaderBytes = 12;
    private const int SectorBytes = 512;

    // AuditWriter.OpenLog's PageSizeBits.
    private const int PageBits = 19;
    private const long PageSize = 1L << PageBits;

    // Largest entry the scan believes: a record is at most prefix + canonical, a commit record ~44 bytes.
    private const int MaxEntryBytes = 4096;

    private readonly Dictionary<long, FileStream?> _open = [];

    // FASTER's device creates an empty segment file where it is asked to read a missing one: the files on
    // disk before FASTER opened the log are noted first.
    private readonly HashSet<string> _present = Directory.GetFiles(directory, SegmentPrefix + "*").Select(Path.GetFileName).ToHashSet(StringComparer.Ordinal)!;

    /// <summary>What one commit file or commit record says: the log was committed up to Until.</summary>
    public readonly record struct Claim(long Until, string Source);

    /// <summary>Where an entry-by-entry walk stopped, and why.</summary>
    public enum Stop
    {
        /// <summary>No segment file where the next entry belongs.</summary>
        MissingSegment,

        /// <summary>The segment file ends.</summary>
        DataEnds,

        /// <summary>Zeros from a page start on, where an entry belongs.</summary>
        NoData,

        /// <summary>An entry with an impossible length or one that fails its checksum.</summary>
        BadEntry,
    }

    /// <summary>
    /// What a walk found: its end and why it stopped there; the data entries before the end; the commit
    /// records passed and the intact ones past the end (Claims); the intact data entries past the end;
    /// and, when the end can only be a cut (a partial entry or sector, or data that stops inside a page
    /// after a record no commit record follows), why.
    /// </summary>
    public sealed record Walked(long End, Stop Stop, string Why, List<AuditLogScan.Entry> Readable, List<Claim> Claims, List<AuditLogScan.Entry> Salvaged)
    {
        /// <summary>Why the end is a cut, in plain words; null when the end is one FASTER can leave.</summary>
        public string? Cut { get; init; }

        /// <summary>
        /// The cut is read from the page layout alone (the file ends inside a page past its last commit
        /// record): a crash cannot leave that, but a full disk can (a partial page write whose commit
        /// failed), so it is proof of a cut only where no head file witnesses what was committed.
        /// </summary>
        public bool CutPastCommit { get; init; }
    }

    /// <summary>Whether a commit file exists at all (FASTER writes the first one at the first commit).</summary>
    public bool HasCommitFiles => CommitFiles > 0;

    /// <summary>How many commit files there are (FASTER keeps one, and two while it replaces it).</summary>
    public int CommitFiles => Directory.Exists(Path.Combine(directory, CommitsFolder)) ? Directory.GetFiles(Path.Combine(directory, CommitsFolder), "commit.*").Length : 0;

    /// <summary>Whether a segment holds bytes: FASTER creates an empty first segment as soon as a log is opened.</summary>
    public bool HasData => _present.Any(name => new FileInfo(Path.Combine(directory, name)).Length > 0);

    /// <summary>Names, sizes and write times of the log's files: whether anything wrote meanwhile.</summary>
    public string Fingerprint()
    {
        var text = new System.Text.StringBuilder();
        var commits = Path.Combine(directory, CommitsFolder);
        foreach (var file in Directory.GetFiles(directory, SegmentPrefix + "*").Concat(Directory.Exists(commits) ? Directory.GetFiles(commits) : []))
        {
            var info = new FileInfo(file);
            text.Append(file).Append(' ').Append(info.Exists ? info.Length : -1).Append(' ').Append(info.Exists ? info.LastWriteTimeUtc.Ticks : 0).Append('\n');
        }

        return text.ToString();
    }

    /// <summary>
    /// Every commit file's claim, or the first file that does not verify (where, in plain words).
    /// </summary>
    public (List<Claim> Claims, string? Where, string? Problem) ReadCommitFiles()
    {
        var claims = new List<Claim>();
        var commits = Path.Combine(directory, CommitsFolder);
        foreach (var file in Directory.Exists(commits) ? Directory.GetFiles(commits, "commit.*") : [])
        {
            var name = CommitsFolder + "/" + Path.GetFileName(file);
            var bytes = File.ReadAllBytes(file);
            if (bytes.Length < 4 || BinaryPrimitives.ReadInt32LittleEndian(bytes) is var size && (size < 0 || size > bytes.Length - 4))
            {
                return (claims, name, "the commit file is damaged (its length prefix does not fit the file)");
            }

            if (!TryParseRecoveryInfo(bytes.AsSpan(4, size), exact: true, out var until))
            {
                return (claims, name, "the commit file is damaged (its checksum or layout does not verify)");
            }

            claims.Add(new Claim(until, name));
        }

        return (claims, null, null);
    }

    /// <summary>
    /// Where the segment files on disk stop covering [<paramref name="start"/>, <paramref name="tail"/>):
    /// the start of the first missing segment, or the end of the first one shorter than the range needs.
    /// A reader must not be sent past that: FASTER reads a missing segment as zeros and goes on after it.
    /// </summary>
    public long CoveredUntil(long start, long tail)
    {
        if (tail <= start)
        {
            return tail;
        }

        var last = (tail - 1) >> bits;
        for (var segment = start >> bits; segment <= last; segment++)
        {
            var from = Math.Max(start, segment << bits);
            if (!Exists(from))
            {
                return from;
            }

            // Every segment but the tail's is written to its end; the tail's must reach the tail.
            var needed = segment < last ? 1L << bits : tail - (segment << bits);
            if (Length(from) < needed)
            {
                return Math.Max(start, (segment << bits) + Length(from));
            }
        }

        return tail;
    }

    /// <summary>FASTER writes whole sectors, so a crash leaves a segment a whole number of them long.</summary>
    private string? CutOffSector(long address) => Exists(address) && Length(address) % SectorBytes != 0
        ? $"not a whole number of {SectorBytes}-byte sectors: the segment was cut, a crash cannot leave that"
        : null;

    /// <summary>
    /// Where a segment file can end: FASTER writes a page whole, or, at a commit, up to the commit record
    /// it just appended, rounded up to a sector (that last sector may hold part of an entry appended
    /// meanwhile: what a crash leaves). A file that ends inside a page further than that sector past the
    /// page's last commit record, or in a page with none, was cut.
    /// </summary>
    private string? CutInPage(long address, long commitEnd)
    {
        var end = (address >> bits << bits) + Length(address);
        if ((end & (PageSize - 1)) == 0)
        {
            return null;
        }

        var pageStart = end & ~(PageSize - 1);
        if (commitEnd <= pageStart)
        {
            return $"{Name(address)} ends inside a page that holds no commit record, and FASTER writes a page whole or up to a commit record: the segment was cut";
        }

        return end > ((commitEnd + SectorBytes - 1) & ~(long)(SectorBytes - 1))
            ? $"{Name(address)} ends {end - commitEnd} bytes past the last commit record of its page (log address {commitEnd}), and FASTER writes a page whole or up to the sector after a commit record: the segment was cut"
            : null;
    }

    /// <summary>An address as a reader finds it on disk: the segment file and the offset in it.</summary>
    public string Describe(long address) => $"log address {address} ({Name(address)} offset {address & ((1L << bits) - 1)})";

    /// <summary>
    /// Walks valid entries from <paramref name="from"/> to the first unreadable one, collecting the data
    /// entries and commit records it passes; past that point it looks for intact commit records that
    /// prove more was committed, and for intact data entries (for <c>export --salvage</c>).
    /// </summary>
    public Walked Walk(long from)
    {
        var readable = new List<AuditLogScan.Entry>();
        var claims = new List<Claim>();
        var salvaged = new List<AuditLogScan.Entry>();
        var address = from;
        var header = new byte[HeaderBytes];
        Stop stop;
        string why;
        var atFileEnd = false;
        // Where the last commit record walked ends (-1 when none): FASTER writes a page either whole or up
        // to the commit record it just appended, rounded up to a sector.
        var commitEnd = -1L;
        while (true)
        {
            if (!Exists(address))
            {
                (stop, why) = (Stop.MissingSegment, $"segment file {Name(address)} is missing");
                break;
            }

            var offset = address & (PageSize - 1);
            // Fewer bytes than a header left in the page: padding (FASTER puts no entry there).
            var noRoom = offset != 0 && PageSize - offset < HeaderBytes;
            var got = noRoom ? 0 : Read(address, header, header.Length);
            var length = got < HeaderBytes ? 0 : BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(8));
            if (length == 0)
            {
                // The rest of a page is zero padding and entries resume on the next page, if this file holds
                // the page to its end. Where it ends inside the page, the data ends here, and this file's
                // length is what says whether a crash or a cut left it: the next page may be the next
                // segment's, whose length says nothing of this one.
                var pageEnd = (address | (PageSize - 1)) + 1;
                if (offset != 0 && (got == HeaderBytes || noRoom) && FileEnd(address) >= pageEnd)
                {
                    address = pageEnd;
                    continue;
                }

                (stop, why, atFileEnd) = offset == 0 && got == HeaderBytes
                    ? (Stop.NoData, "no data where an entry belongs", false)
                    : (Stop.DataEnds, $"the data ends ({Name(address)} is {Length(address)} bytes)", true);
                break;
            }

            var payload = Math.Abs((long)length);
            if (length == int.MinValue || offset + HeaderBytes + Align(payload) > PageSize)
            {
                (stop, why) = (Stop.BadEntry, "an entry with an impossible length");
                break;
            }

            var entry = new byte[HeaderBytes + payload];
            var read = Read(address, entry, entry.Length);
            if (read < entry.Length && (address & ((1L << bits) - 1)) + read == Length(address))
            {
                (stop, why, atFileEnd) = (Stop.BadEntry, $"the entry at {Describe(address)} is {entry.Length} bytes but {Name(address)} ends after {read} of them", true);
                break;
            }

            if (read < entry.Length || XorChecksum(entry.AsSpan(8)) != BinaryPrimitives.ReadUInt64LittleEndian(entry))
            {
                (stop, why) = (Stop.BadEntry, "an entry that fails its checksum");
                break;
            }

            // The next entry is on the next page when too little of this one is left (the walk's next step
            // checks this file holds those bytes).
            var end = address + HeaderBytes + Align(payload);
            var next = (end & (PageSize - 1)) == 0 || PageSize - (end & (PageSize - 1)) < HeaderBytes ? ((end - 1) | (PageSize - 1)) + 1 : end;

            if (length < 0 && TryParseRecoveryInfo(entry.AsSpan(HeaderBytes), exact: false, out var until))
            {
                claims.Add(new Claim(until, $"the commit record at log address {address}"));
                commitEnd = address + HeaderBytes + Align(payload);
            }
            else if (length > 0)
            {
                readable.Add(new AuditLogScan.Entry(address, next, entry[HeaderBytes..]));
            }

            address = end;
        }

        // A segment file that is not a whole number of sectors was cut, wherever the walk stopped in it:
        // also when it stopped at an entry that fails its checksum (a torn last entry, as a crash leaves
        // one) before the file's end, which alone would read as a crash.
        var offSector = CutOffSector(address);
        var inPage = atFileEnd && offSector is null ? CutInPage(address, commitEnd) : null;
        FindIntact(address, claims, salvaged);
        return new Walked(address, stop, why, readable, claims, salvaged) { Cut = offSector ?? inPage, CutPastCommit = inPage is not null };
    }

    /// <summary>
    /// Past an unreadable entry nothing can be trusted to be aligned to an entry: every 4-byte position is
    /// tried for an intact entry (a 64-bit checksum match by chance is negligible). Read in blocks: a
    /// damaged first segment means scanning everything after it.
    /// </summary>
    private void FindIntact(long after, List<Claim> claims, List<AuditLogScan.Entry> salvaged)
    {
        const int Block = 1 << 20;
        var buffer = new byte[Block + HeaderBytes + MaxEntryBytes];
        var end = Directory.GetFiles(directory, SegmentPrefix + "*")
            .Select(f => long.TryParse(Path.GetExtension(f).AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n + 1 : 0)
            .DefaultIfEmpty(0).Max() << bits;
        for (var start = after + 4; start < end;)
        {
            var segmentEnd = ((start >> bits) + 1) << bits;
            if (!Exists(start))
            {
                start = segmentEnd;
                continue;
            }

            var got = Read(start, buffer, (int)Math.Min(buffer.Length, segmentEnd - start));
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

                if (length < 0 && TryParseRecoveryInfo(entry[HeaderBytes..], exact: false, out var until))
                {
                    if (until > after)
                    {
                        claims.Add(new Claim(until, $"the intact commit record at log address {start + i}"));
                    }
                }
                else if (length > 0)
                {
                    salvaged.Add(new AuditLogScan.Entry(start + i, start + i + HeaderBytes + Align(size), entry[HeaderBytes..].ToArray()));
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
    }

    /// <summary>Closes the files read so far: the next read sees them as they are now.</summary>
    public void Dispose()
    {
        foreach (var stream in _open.Values)
        {
            stream?.Dispose();
        }

        _open.Clear();
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
    private static bool TryParseRecoveryInfo(ReadOnlySpan<byte> b, bool exact, out long untilAddress)
    {
        untilAddress = 0;
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

        untilAddress = until;
        return true;
    }

    private string Name(long address) => SegmentPrefix + (address >> bits).ToString(CultureInfo.InvariantCulture);

    private bool Exists(long address) => Segment(address) is not null;

    private long Length(long address) => Segment(address)?.Length ?? 0;

    /// <summary>The log address where the segment file holding <paramref name="address"/> ends.</summary>
    private long FileEnd(long address) => (address >> bits << bits) + Length(address);

    private int Read(long address, byte[] into, int count)
    {
        var file = Segment(address);
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

    private FileStream? Segment(long address)
    {
        var segment = address >> bits;
        if (!_open.TryGetValue(segment, out var stream))
        {
            // A scan walks segments in order: a few open at a time, however long the log.
            if (_open.Count >= 8)
            {
                Dispose();
            }

            var name = SegmentPrefix + segment.ToString(CultureInfo.InvariantCulture);
            var path = Path.Combine(directory, name);
            // A file FASTER's reader created itself is empty and was not there before; a segment a running
            // writer made meanwhile has data (and a scan that finds it still empty looks again).
            stream = File.Exists(path) && (_present.Contains(name) || new FileInfo(path).Length > 0) ? new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete) : null;
            _open[segment] = stream;
        }

        return stream;
    }
}
