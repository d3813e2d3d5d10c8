using System.Buffers;
using System.Text;
using ChronoGuard.Http;

namespace ChronoGuard.Tests.Http;

/// <summary>Feeds heads to HeadReader and HttpHeadParser from memory, the way the connection does.</summary>
internal static class Heads
{
    public const int MaxHeadBytes = 4096;
    public const int MaxHeaders = 32;

    public static HttpHead NewHead()
    {
        var h = new HttpHead(MaxHeadBytes, MaxHeaders);
        h.Reset();
        return h;
    }

    public static ParseError Request(string head) => Request(head, out _);

    public static ParseError Request(string head, out HttpHead parsed) => Parse(Latin1(head), isRequest: true, out parsed);

    /// <summary>A request inside an inspected tunnel (origin-form, authority from Host).</summary>
    public static ParseError OriginRequest(string head, out HttpHead parsed) => Parse(Latin1(head), isRequest: true, out parsed, originForm: true);

    public static ParseError Response(string head, out HttpHead parsed) => Parse(Latin1(head), isRequest: false, out parsed);

    public static byte[] Latin1(string s) => Encoding.Latin1.GetBytes(s);

    private static ParseError Parse(byte[] bytes, bool isRequest, out HttpHead h, bool originForm = false)
    {
        h = NewHead();
        var status = HeadReader.TryRead(new ReadOnlySequence<byte>(bytes), h, out _, out var error);
        if (status == HeadStatus.Error)
        {
            return error;
        }

        Assert.Equal(HeadStatus.Complete, status);
        return isRequest ? HttpHeadParser.ParseRequest(h, originForm) : HttpHeadParser.ParseResponse(h);
    }

    /// <summary>Everything a parse decided, as one comparable string.</summary>
    public static string Describe(HeadStatus status, ParseError error, long headEnd, HttpHead h, bool isRequest)
    {
        var sb = new StringBuilder();
        sb.Append(status).Append(' ').Append(error).Append(" end=").Append(headEnd);
        if (status != HeadStatus.Complete || error != ParseError.None)
        {
            return sb.ToString();
        }

        string S(Seg seg) => Encoding.Latin1.GetString(h.Span(seg));
        sb.Append(" v=1.").Append(h.VersionMinor).Append(" cl=").Append(h.ContentLength).Append(" chunked=").Append(h.Chunked)
            .Append(" keepalive=").Append(h.KeepAlive);
        if (isRequest)
        {
            sb.Append(" method=").Append(S(h.Method)).Append(" target=").Append(S(h.Target)).Append(" host=").Append(S(h.TargetHost))
                .Append(':').Append(h.TargetPort).Append(" path=").Append(S(h.TargetPath)).Append(" hosthdr=").Append(S(h.HostHeader))
                .Append(" auth=").Append(S(h.ProxyAuthorization)).Append(" connect=").Append(h.IsConnect);
        }
        else
        {
            sb.Append(" status=").Append(h.StatusCode).Append(" line=").Append(S(h.StatusLine));
        }

        for (var i = 0; i < h.HeaderCount; i++)
        {
            sb.Append(" [").Append(S(h.HeaderNames[i])).Append('=').Append(S(h.HeaderValues[i])).Append(h.IsForwarded(i) ? "" : " dropped").Append(']');
        }

        return sb.ToString();
    }
}
