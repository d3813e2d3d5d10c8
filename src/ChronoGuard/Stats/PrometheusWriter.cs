using System.Buffers;
using System.Globalization;
using System.Text;
using ChronoGuard.Metrics;

namespace ChronoGuard.Stats;

/// <summary>
/// Prometheus text exposition format 0.0.4: <c># HELP</c> and <c># TYPE</c> once per family, then
/// samples <c>name{label="value",…} number</c>. Label values escape backslash, double quote and line
/// feed; help text escapes backslash and line feed (the format's two escaping rules).
/// </summary>
internal sealed class PrometheusWriter(IBufferWriter<byte> output)
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    private bool _labelOpen;

    public void Family(string name, string type, string help)
    {
        Raw("# HELP ");
        Raw(name);
        Raw(" ");
        foreach (var rune in help.EnumerateRunes())
        {
            Raw(rune.Value switch { '\\' => "\\\\", '\n' => "\\n", _ => rune.ToString() });
        }

        Raw("\n# TYPE ");
        Raw(name);
        Raw(" ");
        Raw(type);
        Raw("\n");
    }

    public PrometheusWriter Sample(string name)
    {
        Raw(name);
        _labelOpen = false;
        return this;
    }

    public PrometheusWriter Label(string name, string value)
    {
        Raw(_labelOpen ? "," : "{");
        _labelOpen = true;
        Raw(name);
        Raw("=\"");
        var start = 0;
        for (var i = 0; i < value.Length; i++)
        {
            var escape = value[i] switch { '\\' => "\\\\", '"' => "\\\"", '\n' => "\\n", _ => null };
            if (escape is not null)
            {
                Raw(value.AsSpan(start, i - start));
                Raw(escape);
                start = i + 1;
            }
        }

        Raw(value.AsSpan(start));
        Raw("\"");
        return this;
    }

    public void Value(long value)
    {
        CloseLabels();
        Span<byte> digits = stackalloc byte[24];
        value.TryFormat(digits, out var n, default, CultureInfo.InvariantCulture);
        output.Write(digits[..n]);
        Raw("\n");
    }

    public void Value(double value)
    {
        CloseLabels();
        Raw(Format(value));
        Raw("\n");
    }

    /// <summary>A histogram family: cumulative <c>_bucket{le=…}</c>, <c>_sum</c>, <c>_count</c>.</summary>
    public void Histogram(LatencyHistogram histogram)
    {
        Family(histogram.Name, "histogram", histogram.Help);
        var (cumulative, sum, count) = histogram.Read();
        for (var i = 0; i < cumulative.Length; i++)
        {
            Sample(histogram.Name + "_bucket").Label("le", i < histogram.Bounds.Length ? Format(histogram.Bounds[i]) : "+Inf").Value(cumulative[i]);
        }

        Sample(histogram.Name + "_sum").Value(sum);
        Sample(histogram.Name + "_count").Value(count);
    }

    public static string Format(double value) =>
        double.IsPositiveInfinity(value) ? "+Inf" : double.IsNegativeInfinity(value) ? "-Inf" : double.IsNaN(value) ? "NaN" : value.ToString("R", CultureInfo.InvariantCulture);

    private void CloseLabels()
    {
        Raw(_labelOpen ? "} " : " ");
        _labelOpen = false;
    }

    private void Raw(string text) => Raw(text.AsSpan());

    private void Raw(ReadOnlySpan<char> text)
    {
        var span = output.GetSpan(Encoding.UTF8.GetMaxByteCount(text.Length));
        output.Advance(Encoding.UTF8.GetBytes(text, span));
    }
}
