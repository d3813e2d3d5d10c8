using System.Collections.Frozen;

namespace ChronoGuard.Metrics;

/// <summary>
/// The fixed set of values a label can take, given when the metrics are made: <see cref="Other"/> (index
/// 0) stands for anything outside it, so a new or unexpected value can never grow a metric's series.
/// What the values are is the producer's business (the gate's decision reasons); this only bounds them.
/// </summary>
internal sealed class LabelValues
{
    public const string Other = "other";

    private readonly FrozenDictionary<string, int> _index;
    private readonly string? _foldPrefix;
    private readonly int _foldIndex;

    /// <param name="values">The values in label order; a repeated value keeps its first place.</param>
    /// <param name="foldPrefix">Values starting with it (<c>grant:INC-4711</c>) all count as <paramref name="foldInto"/>.</param>
    /// <param name="foldInto">One of <paramref name="values"/>.</param>
    public LabelValues(IEnumerable<string> values, string? foldPrefix = null, string? foldInto = null)
    {
        var names = new List<string> { Other };
        foreach (var value in values)
        {
            if (!names.Contains(value))
            {
                names.Add(value);
            }
        }

        Names = [.. names];
        _index = Names.Select((name, i) => (name, i)).ToFrozenDictionary(p => p.name, p => p.i, StringComparer.Ordinal);
        if (foldPrefix is not null)
        {
            _foldPrefix = foldPrefix;
            _foldIndex = foldInto is not null && _index.TryGetValue(foldInto, out var i) ? i : throw new ArgumentException($"'{foldInto}' is not one of the values", nameof(foldInto));
        }
    }

    /// <summary>Label values by index; <see cref="Other"/> is index 0.</summary>
    public string[] Names { get; }

    public int Count => Names.Length;

    /// <summary>The index of a value: allocation-free, lock-free; unknown and null map to <see cref="Other"/>.</summary>
    public int IndexOf(string? value)
    {
        if (value is null)
        {
            return 0;
        }

        if (_index.TryGetValue(value, out var i))
        {
            return i;
        }

        return _foldPrefix is not null && value.StartsWith(_foldPrefix, StringComparison.Ordinal) ? _foldIndex : 0;
    }
}
