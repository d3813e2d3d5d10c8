using System.Net;
using System.Text;
using ChronoGuard.Audit;
using ChronoGuard.Policy;
using ChronoGuard.Proxy;
using ChronoGuard.Tests.Policy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Proxy;

/// <summary>
/// SPEC §8 listener-bound identity on HTTP listeners: a connection accepted on a listener bound to an
/// agent is that agent without credentials; credentials sent there must be that agent's (else 407);
/// records say how the agent was identified; the unbound listener still needs credentials.
/// </summary>
public sealed class ListenerIdentityTests
{
    private const string Policy = """
        {
          "version": 1,
          "network": { "allowPrivateDestinations": false, "allowedCidrs": ["127.0.0.0/8"], "allowedPorts": [], "requireSniMatch": false },
          "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] },
                      { "id": "eve", "tokenSha256": "$TOKEN", "policies": ["p"] },
                      { "id": "gone", "tokenSha256": "$TOKEN", "status": "suspended", "policies": ["p"] } ],
          "policies": [ { "name": "p", "allowedDomains": ["localhost"] } ]
        }
        """;

    [Theory]
    [InlineData(null, 200, (int)AuditIdentity.Listener, "bot")]
    [InlineData("bot", 200, (int)AuditIdentity.Credential, "bot")]
    [InlineData("eve", 407, (int)AuditIdentity.Unauthenticated, null)]
    public async Task A_bound_listener_is_its_agent_and_credentials_sent_there_must_be_that_agents(string? credentialsOf, int status, int identity, string? agent)
    {
        await using var origin = await KestrelOrigin.StartAsync();
        using var engines = new PolicyEngines(Policy.Replace("\"allowedPorts\": []", $"\"allowedPorts\": [{origin.Port}]", StringComparison.Ordinal));
        var gate = new RecordingGate(new PolicyGate(engines.Engine, TimeProvider.System));
        await using var proxy = TestProxy.Start(gate: gate, listeners: new HttpConnectionFactory("bot"));

        using var client = await RawClient.ConnectAsync(proxy.EndPointOf(1));
        var credentials = credentialsOf is null ? string.Empty : PolicyEngines.Credentials(credentialsOf);
        await client.SendAsync($"GET http://localhost:{origin.Port}/hello HTTP/1.1\r\nHost: localhost:{origin.Port}\r\n{credentials}Connection: close\r\n\r\n");

        Assert.Equal(status, (await client.ReadHeadAsync()).Status);
        Assert.Equal((AuditIdentity)identity, Assert.Single(gate.Identities));
        Assert.Equal(agent, Assert.Single(gate.Agents).Agent);
    }

    [Fact]
    public async Task The_unbound_listener_beside_a_bound_one_still_asks_for_credentials()
    {
        using var engines = new PolicyEngines(Policy);
        var gate = new RecordingGate(new PolicyGate(engines.Engine, TimeProvider.System));
        await using var proxy = TestProxy.Start(gate: gate, listeners: new HttpConnectionFactory("bot"));

        using var client = await RawClient.ConnectAsync(proxy.EndPoint);
        await client.SendAsync("CONNECT localhost:443 HTTP/1.1\r\nHost: localhost:443\r\n\r\n");

        Assert.Equal(407, (await client.ReadHeadAsync()).Status);
        Assert.Equal(AuditIdentity.Unauthenticated, Assert.Single(gate.Identities));
    }

    [Fact]
    public async Task A_bound_listener_whose_agent_is_suspended_or_removed_by_a_reload_refuses()
    {
        using var engines = new PolicyEngines(Policy);
        var gate = new RecordingGate(new PolicyGate(engines.Engine, TimeProvider.System));
        await using var proxy = TestProxy.Start(gate: gate, listeners: [new HttpConnectionFactory("gone"), new HttpConnectionFactory("eve")]);

        using (var suspended = await RawClient.ConnectAsync(proxy.EndPointOf(1)))
        {
            await suspended.SendAsync("CONNECT localhost:443 HTTP/1.1\r\nHost: localhost:443\r\n\r\n");
            Assert.Equal(403, (await suspended.ReadHeadAsync()).Status);
        }

        engines.Reload(Policy.Replace("""{ "id": "eve", "tokenSha256": "$TOKEN", "policies": ["p"] },""", string.Empty, StringComparison.Ordinal));
        using var removed = await RawClient.ConnectAsync(proxy.EndPointOf(2));
        await removed.SendAsync("CONNECT localhost:443 HTTP/1.1\r\nHost: localhost:443\r\n\r\n");

        Assert.Equal(407, (await removed.ReadHeadAsync()).Status);
        Assert.Equal([(string?)"gone", null], gate.Agents.Select(a => a.Agent));
    }
}
