using System.Runtime.CompilerServices;

namespace ChronoGuard.Policy;

/// <summary>
/// Matches a host against every exact (<c>github.com</c>) and wildcard (<c>*.github.com</c>) pattern
/// in one pass, with no allocation.
/// <para>
/// It is the Aho-Corasick automaton of the patterns reversed and anchored at the end of the host: the
/// host is walked backwards from its last character, and because every pattern is anchored there,
/// every failure link is the dead state (state 0), so the automaton is its goto function alone and a
/// mismatch ends the walk. Outputs are read at label boundaries: after consuming a suffix S, the
/// state's exact id applies when S is the whole host, its wildcard id when the next character back is
/// a '.' (so <c>*.github.com</c> matches <c>a.b.github.com</c> but neither <c>github.com</c> nor
/// <c>xgithub.com</c>).
/// </para>
/// <para>
/// The alphabet is reduced to 40 symbols (letters case-folded, digits, '-', '.', '_', anything else).
/// Transitions live in flat arrays: states with two or more children own a row of 40 ints in one
/// table; the many single-child states of a trie's long tails store (symbol, child) packed in one int,
/// which keeps 100,000 patterns to tens of megabytes instead of hundreds.
/// </para>
/// <para>
/// A pattern may carry a port or range (<c>github.com:22</c>, see <see cref="DomainNames.TryNormalizeEntry"/>):
/// one name can then have several patterns, so a state's exact and wildcard outputs are runs of
/// (pattern, low, high) entries, and <see cref="Match(ReadOnlySpan{byte}, int, Span{int})"/> reports
/// only the entries whose ports cover the request's (a pattern without a port covers every port).
/// The port is part of the index, not a filter the caller runs over the result.
/// </para>
/// </summary>
internal sealed class DomainAutomaton
{
    public const int AlphabetSize = 40;
    private const int Other = 39;
    private const int Dot = 37;

    private static readonly byte[] SymbolOf = BuildSymbols();

    private readonly int[] _rowOf;
    private readonly int[] _table;
    private readonly int[] _single;
    private readonly int[] _exact;
    private readonly int[] _wildcard;
    private readonly PortEntry[] _entries;
    private readonly BlockEntry[] _blocks;

    private DomainAutomaton(int[] rowOf, int[] table, int[] single, int[] exact, int[] wildcard, PortEntry[] entries, BlockEntry[] blocks, int patternCount, int maxMatches)
    {
        _blocks = blocks;
        _rowOf = rowOf;
        _table = table;
        _single = single;
        _exact = exact;
        _wildcard = wildcard;
        _entries = entries;
        PatternCount = patternCount;
        MaxMatches = maxMatches;
    }

    public int PatternCount { get; }

    /// <summary>
    /// The most pattern ids one host can match, whatever its port (every output a walk can write, a
    /// wildcard's only where a '.' follows). A buffer this long never truncates a match, so no blocked
    /// pattern is dropped; the compiler refuses a policy above its fixed buffer.
    /// </summary>
    public int MaxMatches { get; }

    public int StateCount => _rowOf.Length - 1;

    /// <summary>Builds the automaton; pattern i of <paramref name="patterns"/> reports id i.</summary>
    /// <param name="patterns">Canonical patterns (see <see cref="DomainNames"/>), with or without a port; duplicates keep the first id.</param>
    public static DomainAutomaton Build(IReadOnlyList<string> patterns)
    {
        // Build a plain trie first (children in a dictionary per state is too slow for 100k patterns:
        // use a hash from (state, symbol) to child instead).
        var children = new Dictionary<long, int>(patterns.Count * 8);
        var childCount = new List<int> { 0, 0 };
        var parent = new List<int> { 0, 0 }; // negated when the edge from the parent reads a '.'
        var outputs = new List<(int State, bool Wildcard, PortEntry Entry)>(patterns.Count);
        var seen = new HashSet<string>(patterns.Count, StringComparer.Ordinal);
        var blocks = new List<BlockEntry>();
        var states = 2; // 0 = dead, 1 = root
        for (var id = 0; id < patterns.Count; id++)
        {
            if (!seen.Add(patterns[id]))
            {
                continue;
            }

            DomainNames.SplitPorts(patterns[id], out var p, out var lo, out var hi);
            if (System.Net.IPNetwork.TryParse(p, out var network))
            {
                // An address block matches IP-literal hosts by address, not by their text.
                var v4 = network.BaseAddress.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork;
                blocks.Add(new BlockEntry(Key(network.BaseAddress), (v4 ? 96 : 0) + network.PrefixLength, new PortEntry(id, lo, hi)));
                continue;
            }

            var isWildcard = p.StartsWith("*.", StringComparison.Ordinal);
            var body = isWildcard ? p.AsSpan(2) : p.AsSpan();
            var s = 1;
            for (var i = body.Length - 1; i >= 0; i--)
            {
                var c = body[i] < 128 ? SymbolOf[body[i]] : Other;
                var key = ((long)s * AlphabetSize) + c;
                if (!children.TryGetValue(key, out var next))
                {
                    next = states++;
                    children[key] = next;
                    childCount[s]++;
                    childCount.Add(0);
                    parent.Add(c == Dot ? -s : s);
                }

                s = next;
            }

            outputs.Add((s, isWildcard, new PortEntry(id, lo, hi)));
        }

        var rowOf = new int[states];
        var rows = 0;
        for (var s = 0; s < states; s++)
        {
            rowOf[s] = childCount[s] >= 2 ? rows++ : -1;
        }

        var table = new int[rows * AlphabetSize];
        var single = new int[states];
        Array.Fill(single, -1);
        foreach (var (key, child) in children)
        {
            var s = (int)(key / AlphabetSize);
            var c = (int)(key % AlphabetSize);
            if (rowOf[s] >= 0)
            {
                table[(rowOf[s] * AlphabetSize) + c] = child;
            }
            else
            {
                single[s] = (c << 24) | child;
            }
        }

        // Each state's outputs are one run of entries ended by a sentinel (-1 when it has none), laid
        // out by counting first, so a name with thousands of ports costs linear time.
        var exactCount = new int[states];
        var wildcardCount = new int[states];
        foreach (var (state, isWildcard, _) in outputs)
        {
            (isWildcard ? wildcardCount : exactCount)[state]++;
        }

        var exactStarts = new int[states];
        var wildcardStarts = new int[states];
        var length = 0;
        for (var s = 0; s < states; s++)
        {
            exactStarts[s] = exactCount[s] == 0 ? -1 : length;
            length += exactCount[s] == 0 ? 0 : exactCount[s] + 1;
            wildcardStarts[s] = wildcardCount[s] == 0 ? -1 : length;
            length += wildcardCount[s] == 0 ? 0 : wildcardCount[s] + 1;
        }

        var entries = new PortEntry[length];
        Array.Fill(entries, new PortEntry(-1, 0, -1));
        var filled = new int[states * 2];
        foreach (var (state, isWildcard, entry) in outputs)
        {
            var start = isWildcard ? wildcardStarts[state] : exactStarts[state];
            entries[start + filled[(state * 2) + (isWildcard ? 1 : 0)]++] = entry;
        }

        // The common state, one pattern without a port, holds the pattern id itself (as the automaton
        // did before ports), so a request pays for the entries only where a name has ports; a run
        // starting at e is stored as -2 - e.
        foreach (var starts in (int[][])[exactStarts, wildcardStarts])
        {
            for (var s = 0; s < states; s++)
            {
                if (starts[s] >= 0)
                {
                    var first = entries[starts[s]];
                    starts[s] = entries[starts[s] + 1].Pattern < 0 && first.Low == int.MinValue ? first.Pattern : -2 - starts[s];
                }
            }
        }

        // The most ids one walk can write: at a state the host either ends (its exact outputs), goes
        // on with a '.' (its wildcard outputs, then the '.' child's best) or with another character
        // (that child's best). A child's id is above its parent's, so one backward pass sees every
        // child before its parent. Without ports this is at most 128 (a wildcard per '.', one exact).
        var best = new int[states];
        var viaDot = new int[states];
        var viaOther = new int[states];
        for (var s = states - 1; s >= 1; s--)
        {
            best[s] = Math.Max(Math.Max(exactCount[s], viaOther[s]), wildcardCount[s] + viaDot[s]);
            if (s >= 2)
            {
                var via = parent[s] < 0 ? viaDot : viaOther;
                var up = Math.Abs(parent[s]);
                via[up] = Math.Max(via[up], best[s]);
            }
        }

        // A host is one address: room after the names for every block that can hold one address at once.
        return new DomainAutomaton(rowOf, table, single, exactStarts, wildcardStarts, entries, [.. blocks], patterns.Count, best[1] + MostNested(blocks));
    }

    /// <summary>
    /// Writes the ids of every pattern matching <paramref name="host"/> (ASCII, any case, one optional
    /// trailing dot) on <paramref name="port"/> into <paramref name="matches"/>; returns how many. A
    /// buffer of <see cref="MaxMatches"/> always suffices.
    /// </summary>
    public int Match(ReadOnlySpan<byte> host, int port, Span<int> matches)
    {
        var count = Walk(host, matches);
        foreach (var output in matches[..count])
        {
            if (output < 0)
            {
                count = ExpandRuns(matches, count, port, port);
                break;
            }
        }

        return _blocks.Length == 0 ? count : MatchBlocks(host, port, port, matches, count);
    }

    /// <summary>Every pattern matching the name, whatever its ports (what <c>policy explain</c> shows beside the match).</summary>
    public int MatchAnyPort(ReadOnlySpan<byte> host, Span<int> matches)
    {
        var count = ExpandRuns(matches, Walk(host, matches), int.MinValue, int.MaxValue);
        return _blocks.Length == 0 ? count : MatchBlocks(host, int.MinValue, int.MaxValue, matches, count);
    }

    /// <summary>
    /// Adds the address blocks holding <paramref name="host"/> when it is an IP literal (only policies
    /// that name a block pay for this). An IPv4 literal is read without allocating; an IPv6 one goes
    /// through <see cref="System.Net.IPAddress"/> (one small allocation, for hosts that are IPv6 literals).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private int MatchBlocks(ReadOnlySpan<byte> host, int low, int high, Span<int> matches, int count)
    {
        if (!TryReadAddress(host, out var address))
        {
            return count;
        }

        foreach (var block in _blocks)
        {
            var mask = block.Prefix == 0 ? UInt128.Zero : UInt128.MaxValue << (128 - block.Prefix);
            if ((address & mask) == block.Base && block.Entry.Low <= high && block.Entry.High >= low && count < matches.Length)
            {
                matches[count++] = block.Entry.Pattern;
            }
        }

        return count;
    }

    private static bool TryReadAddress(ReadOnlySpan<byte> host, out UInt128 address)
    {
        address = default;
        if (host.Length >= 2 && host[0] == (byte)'[' && host[^1] == (byte)']')
        {
            host = host[1..^1];
        }

        if (host.IsEmpty || host.Length > 45)
        {
            return false;
        }

        if (host.IndexOf((byte)':') < 0)
        {
            // Dotted quad, exactly four decimal parts 0-255 without leading zeros (what IPAddress.TryFormat writes).
            uint v4 = 0;
            var parts = 0;
            var i = 0;
            while (i < host.Length)
            {
                var start = i;
                var part = 0;
                while (i < host.Length && host[i] is >= (byte)'0' and <= (byte)'9' && i - start < 3)
                {
                    part = (part * 10) + (host[i++] - '0');
                }

                if (i == start || part > 255 || (i - start > 1 && host[start] == (byte)'0') || ++parts > 4)
                {
                    return false;
                }

                v4 = (v4 << 8) | (uint)part;
                if (i < host.Length && (host[i++] != (byte)'.' || i == host.Length))
                {
                    return false;
                }
            }

            if (parts != 4)
            {
                return false;
            }

            address = ((UInt128)0xFFFF << 32) | v4;
            return true;
        }

        Span<char> text = stackalloc char[host.Length];
        for (var i = 0; i < host.Length; i++)
        {
            text[i] = (char)host[i];
        }

        if (!System.Net.IPAddress.TryParse(text, out var ip))
        {
            return false;
        }

        address = Key(ip);
        return true;
    }

    /// <summary>
    /// The walk writes each output state's value as stored: a pattern without a port (>= 0) or a run
    /// of entries (<= -2), expanded after the walk. Keeping the port out of the loop keeps the walk's
    /// registers what they were before ports (carrying it spilled the host and tables to the stack).
    /// </summary>
    private int Walk(ReadOnlySpan<byte> host, Span<int> matches)
    {
        if (!host.IsEmpty && host[^1] == (byte)'.')
        {
            host = host[..^1];
        }

        var count = 0;
        var s = 1;
        var rowOf = _rowOf;
        var single = _single;
        var table = _table;
        for (var i = host.Length - 1; i >= 0; i--)
        {
            var b = host[i];
            var c = b < 128 ? SymbolOf[b] : Other;
            var row = rowOf[s];
            if (row >= 0)
            {
                s = table[(row * AlphabetSize) + c];
            }
            else
            {
                var packed = single[s];
                s = packed >= 0 && (packed >>> 24) == c ? packed & 0xFFFFFF : 0;
            }

            if (s == 0)
            {
                return count;
            }

            // A complete suffix followed (backwards) by a dot: the wildcard for that suffix applies.
            if (i > 0 && host[i - 1] == (byte)'.' && _wildcard[s] != -1 && count < matches.Length)
            {
                matches[count++] = _wildcard[s];
            }
        }

        if (_exact[s] != -1 && count < matches.Length)
        {
            matches[count++] = _exact[s];
        }

        return count;
    }

    /// <summary>Replaces each run by its entries whose ports meet [<paramref name="low"/>, <paramref name="high"/>]; only names with ports have runs.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private int ExpandRuns(Span<int> matches, int count, int low, int high)
    {
        Span<int> walked = stackalloc int[count];
        matches[..count].CopyTo(walked);
        var n = 0;
        var entries = _entries;
        foreach (var output in walked)
        {
            if (output >= 0)
            {
                matches[n++] = output;
                continue;
            }

            for (var e = -2 - output; entries[e].Pattern >= 0; e++)
            {
                if (entries[e].Low <= high && entries[e].High >= low && n < matches.Length)
                {
                    matches[n++] = entries[e].Pattern;
                }
            }
        }

        return n;
    }

    /// <summary>One output of a state: a pattern and the ports it covers (int's whole range when it names none).</summary>
    private readonly record struct PortEntry(int Pattern, int Low, int High);

    /// <summary>
    /// The most blocks one address can be in. Two blocks are nested or apart, so the address that is
    /// in the most is the base of one of them: count, for each block, the blocks (with their ports,
    /// each its own pattern) whose prefix of its base is theirs. 129 lookups a block.
    /// </summary>
    private static int MostNested(List<BlockEntry> blocks)
    {
        var count = new Dictionary<(UInt128, int), int>();
        foreach (var b in blocks)
        {
            count[(b.Base, b.Prefix)] = count.GetValueOrDefault((b.Base, b.Prefix)) + 1;
        }

        var most = 0;
        foreach (var b in blocks)
        {
            var holding = 0;
            for (var p = 0; p <= b.Prefix; p++)
            {
                var mask = p == 0 ? UInt128.Zero : UInt128.MaxValue << (128 - p);
                holding += count.GetValueOrDefault((b.Base & mask, p));
            }

            most = Math.Max(most, holding);
        }

        return most;
    }

    /// <summary>An address as 128 bits, IPv4 in its mapped form (<c>::ffff:a.b.c.d</c>), so one block test serves both families.</summary>
    private static UInt128 Key(System.Net.IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[16];
        if (address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)
        {
            address.TryWriteBytes(bytes[12..], out _);
            return ((UInt128)0xFFFF << 32) | System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(bytes[12..]);
        }

        address.TryWriteBytes(bytes, out _);
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt128BigEndian(bytes);
    }

    /// <summary>An address block pattern: its base as 128 bits (IPv4 mapped) and its prefix in that space.</summary>
    private readonly record struct BlockEntry(UInt128 Base, int Prefix, PortEntry Entry);

    private static byte[] BuildSymbols()
    {
        var map = new byte[128];
        Array.Fill(map, (byte)Other);
        for (var c = 'a'; c <= 'z'; c++)
        {
            map[c] = (byte)(c - 'a');
            map[char.ToUpperInvariant(c)] = (byte)(c - 'a');
        }

        for (var c = '0'; c <= '9'; c++)
        {
            map[c] = (byte)(26 + c - '0');
        }

        map['-'] = 36;
        map['.'] = Dot;
        map['_'] = 38;
        return map;
    }
}
