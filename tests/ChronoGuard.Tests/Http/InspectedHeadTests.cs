using System.Text;
using ChronoGuard.Http;

namespace ChronoGuard.Tests.Http;

/// <summary>
/// Heads inside an inspected tunnel (SPEC §7): origin-form targets with the authority from <c>Host</c>,
/// and the rewriter's two inspected-only powers, replacing one header's whole value (a credential)
/// and relaying a protocol upgrade, neither of which may touch framing, routing or this hop's headers.
/// </summary>
public sealed class InspectedHeadTests
{
    [Theory]
    [InlineData("GET /a/./b/../c?q=1 HTTP/1.1\r\nHost: api.test:8443\r\n\r\n", "api.test", 8443, "/a/c", "/a/c?q=1")]
    [InlineData("GET / HTTP/1.1\r\nHost: API.test\r\n\r\n", "API.test", 443, "/", "/")]
    [InlineData("GET /x HTTP/1.0\r\nHost: [::1]:9\r\n\r\n", "::1", 9, "/x", "/x")]
    [InlineData("POST /%7Euser HTTP/1.1\r\nHost: 127.0.0.1:443\r\nContent-Length: 0\r\n\r\n", "127.0.0.1", 443, "/~user", "/~user")]
    public void An_origin_form_request_takes_its_authority_from_Host_and_its_normalised_path(string head, string host, int port, string path, string target)
    {
        Assert.Equal(ParseError.None, Heads.OriginRequest(head, out var h));

        Assert.Equal(host, Encoding.ASCII.GetString(h.Span(h.TargetHost)));
        Assert.Equal(port, h.TargetPort);
        Assert.Equal(path, Encoding.ASCII.GetString(h.Path));
        Assert.StartsWith(Encoding.ASCII.GetString(h.Span(h.Method)) + " " + target + " HTTP/1.", Rewrite(h), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("GET http://api.test/x HTTP/1.1\r\nHost: api.test\r\n\r\n", "not_origin_form")]
    [InlineData("GET https://api.test/x HTTP/1.1\r\nHost: api.test\r\n\r\n", "not_origin_form")]
    [InlineData("OPTIONS * HTTP/1.1\r\nHost: api.test\r\n\r\n", "not_origin_form")]
    [InlineData("CONNECT api.test:443 HTTP/1.1\r\nHost: api.test:443\r\n\r\n", "not_origin_form")]
    [InlineData("CONNECT /x HTTP/1.1\r\nHost: api.test:443\r\n\r\n", "not_origin_form")]
    [InlineData("GET /x HTTP/1.1\r\n\r\n", "missing_host")]
    [InlineData("GET /x HTTP/1.0\r\n\r\n", "missing_host")]
    [InlineData("GET /x HTTP/1.1\r\nHost: a b\r\n\r\n", "bad_target")]
    [InlineData("GET /x HTTP/1.1\r\nHost: api.test:0\r\n\r\n", "bad_target")]
    [InlineData("GET /x HTTP/1.1\r\nHost: user@api.test\r\n\r\n", "bad_target")]
    [InlineData("GET /x#f HTTP/1.1\r\nHost: api.test\r\n\r\n", "bad_target")]
    [InlineData("GET /a%2Fb HTTP/1.1\r\nHost: api.test\r\n\r\n", "bad_path")]
    [InlineData("GET /x HTTP/1.1\r\nHost: api.test\r\nHost: api.test\r\n\r\n", "duplicate_host")]
    public void Anything_but_an_origin_form_request_with_one_valid_Host_is_refused(string head, string reason)
    {
        Assert.Equal(reason, ParseErrors.Reason(Heads.OriginRequest(head, out _)));
    }

    [Fact]
    public void A_proxy_request_in_origin_form_is_still_refused_outside_a_tunnel()
    {
        Assert.Equal(ParseError.NotAProxyRequest, Heads.Request("GET /x HTTP/1.1\r\nHost: api.test\r\n\r\n"));
    }

    [Theory]
    [InlineData("Authorization: Bearer cg-placeholder\r\n", "Authorization: Bearer SECRET\r\n")]
    [InlineData("authorization: Bearer cg-placeholder\r\n", "Authorization: Bearer SECRET\r\n")]
    [InlineData("Authorization: a\r\nX-Other: 1\r\nAuthorization: b\r\n", "Authorization: Bearer SECRET\r\nX-Other: 1\r\n")]
    [InlineData("X-Other: 1\r\n", "X-Other: 1\r\nAuthorization: Bearer SECRET\r\n")]
    public void The_credential_header_is_written_once_with_the_whole_value(string headers, string expected)
    {
        Assert.Equal(ParseError.None, Heads.OriginRequest("GET /x HTTP/1.1\r\nHost: api.test\r\n" + headers + "\r\n", out var h));

        var upstream = Rewrite(h, "Authorization", "Bearer SECRET");

        Assert.Equal("GET /x HTTP/1.1\r\nHost: api.test\r\n" + expected + "Via: 1.1 chronoguard\r\n\r\n", upstream);
    }

    [Theory]
    [InlineData("Host")]
    [InlineData("Content-Length")]
    [InlineData("Transfer-Encoding")]
    [InlineData("Connection")]
    [InlineData("Keep-Alive")]
    [InlineData("TE")]
    [InlineData("Trailer")]
    [InlineData("Upgrade")]
    [InlineData("Via")]
    [InlineData("Proxy-Authorization")]
    [InlineData("proxy-anything")]
    public void A_header_that_frames_routes_or_belongs_to_the_hop_never_receives_an_injected_value(string name)
    {
        Assert.False(RequestRewriter.MayInject(Encoding.ASCII.GetBytes(name)));
        Assert.Equal(ParseError.None, Heads.OriginRequest("POST /x HTTP/1.1\r\nHost: api.test\r\nContent-Length: 2\r\n\r\n", out var h));

        // Not written where the request had none, nor in place of the one the rewriter writes itself.
        var upstream = Rewrite(h, name, "SECRET");

        Assert.Equal("POST /x HTTP/1.1\r\nHost: api.test\r\nContent-Length: 2\r\nVia: 1.1 chronoguard\r\n\r\n", upstream);
    }

    [Fact]
    public void An_upgrade_is_written_again_only_when_asked()
    {
        Assert.Equal(ParseError.None, Heads.OriginRequest("GET /ws HTTP/1.1\r\nHost: api.test\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n", out var h));
        Assert.True(h.ConnectionUpgrade);

        Assert.Equal("GET /ws HTTP/1.1\r\nHost: api.test\r\nSec-WebSocket-Key: k\r\nVia: 1.1 chronoguard\r\n\r\n", Rewrite(h));
        Assert.Equal("GET /ws HTTP/1.1\r\nHost: api.test\r\nSec-WebSocket-Key: k\r\nConnection: upgrade\r\nUpgrade: websocket\r\nVia: 1.1 chronoguard\r\n\r\n", Rewrite(h, upgrade: true));
    }

    private static string Rewrite(HttpHead h, string? injectName = null, string? injectValue = null, bool upgrade = false)
    {
        var buffer = new byte[8192];
        var n = RequestRewriter.Write(h, buffer, injectName is null ? default : Encoding.ASCII.GetBytes(injectName), injectValue is null ? default : Encoding.ASCII.GetBytes(injectValue), upgrade);
        return Encoding.ASCII.GetString(buffer, 0, n);
    }
}
