using System.Buffers;
using System.Text;
using BenchmarkDotNet.Attributes;
using ChronoGuard.Http;

namespace ChronoGuard.Benchmarks;

/// <summary>Finding and parsing one request head: the proxy's per-request parsing cost.</summary>
[MemoryDiagnoser]
public class HttpParserBenchmarks
{
    private static readonly ReadOnlySequence<byte> Connect = new(Encoding.ASCII.GetBytes(
        "CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\nProxy-Authorization: Basic cmVzZWFyY2gtYm90OnRva2Vu\r\nUser-Agent: python-httpx/0.27\r\n\r\n"));

    private static readonly ReadOnlySequence<byte> Get = new(Encoding.ASCII.GetBytes(
        "GET http://example.org/v1/items?page=2 HTTP/1.1\r\nHost: example.org\r\nUser-Agent: curl/8.5\r\nAccept: */*\r\n" +
        "Accept-Encoding: gzip, br\r\nProxy-Authorization: Basic cmVzZWFyY2gtYm90OnRva2Vu\r\nProxy-Connection: keep-alive\r\n" +
        "Cookie: a=1; b=2; session=0123456789abcdef\r\nX-Request-Id: 7b2c7a0e-3f8d-4a51-b0b9-2f1f2c3d4e5f\r\n\r\n"));

    // A request inside an inspected tunnel (SPEC §7): origin-form, with the placeholder a credential replaces.
    private static readonly ReadOnlySequence<byte> Inspected = new(Encoding.ASCII.GetBytes(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\nUser-Agent: python-httpx/0.27\r\nAccept: */*\r\n" +
        "Authorization: Bearer cg-placeholder-openai\r\nContent-Type: application/json\r\nContent-Length: 512\r\n\r\n"));

    private static readonly byte[] InjectName = "Authorization"u8.ToArray();
    private static readonly byte[] InjectValue = Encoding.ASCII.GetBytes("Bearer sk-" + new string('x', 48));

    private readonly HttpHead _head = new(32 * 1024, 128);
    private readonly byte[] _rewritten = new byte[33 * 1024];

    [Benchmark]
    public int ConnectHead() => (int)Parse(Connect);

    [Benchmark]
    public int ForwardHead() => (int)Parse(Get);

    /// <summary>An inspected request: parsed in origin-form and rewritten with its credential header replaced.</summary>
    [Benchmark]
    public int InspectedHeadInjected()
    {
        Parse(Inspected, originForm: true);
        return RequestRewriter.Write(_head, _rewritten, InjectName, InjectValue);
    }

    private ParseError Parse(in ReadOnlySequence<byte> input, bool originForm = false)
    {
        _head.Reset();
        HeadReader.TryRead(input, _head, out _, out _);
        return HttpHeadParser.ParseRequest(_head, originForm);
    }
}
