using System.Net;
using System.Net.Sockets;
using ChronoGuard.Audit;
using ChronoGuard.Policy;
using ChronoGuard.Proxy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Proxy;

/// <summary>
/// Observe mode records what enforce would do (SPEC §3, §4): the same request through the real proxy,
/// a real policy and a real audit log, once in enforce and once in observe mode, gives the same
/// decision and reason (the first refusal in precedence order: a guard, TLS or dial step that runs
/// only because observe mode let an earlier refusal through never replaces it), and observe mode
/// forwards it with <c>enforced: false</c> exactly when enforce refused it. Names resolve only to
/// loopback addresses (refused as private unless allowedCidrs names 127.0.0.1), so only loopback is dialed.
/// </summary>
public sealed class ObserveTellsEnforceTests
{
    private const string Loopback = "\"127.0.0.1/32\"";

    /// <summary>(front end, host, port: "open" in allowedPorts, "other" listening but not allowed, "closed" allowed with nothing listening; allowedCidrs; ClientHello SNI or "-"; enforce's "DECISION reason").</summary>
    public static TheoryData<string, string, string, string, string, string> Cases()
    {
        var data = new TheoryData<string, string, string, string, string, string>();
        foreach (var front in new[] { "CONNECT", "GET" })
        {
            data.Add(front, "ok.test", "open", Loopback, "-", $"ALLOW {Reasons.Allowed}");
            data.Add(front, "mixed.test", "open", Loopback, "-", $"ALLOW {Reasons.Allowed}");
            data.Add(front, "ok.test", "open", "", "-", $"BLOCK {Reasons.PrivateDestination}");
            data.Add(front, "ok.test", "other", Loopback, "-", $"BLOCK {Reasons.PortNotAllowed}");
            data.Add(front, "ok.test", "other", "", "-", $"BLOCK {Reasons.PortNotAllowed}");
            data.Add(front, "blocked.test", "open", "", "-", $"BLOCK {Reasons.DomainBlocked}");
            data.Add(front, "blocked.test", "open", Loopback, "-", $"BLOCK {Reasons.DomainBlocked}");
            data.Add(front, "blocked.test", "other", "", "-", $"BLOCK {Reasons.PortNotAllowed}");
            data.Add(front, "blocked.test", "closed", "", "-", $"BLOCK {Reasons.DomainBlocked}");
            data.Add(front, "unknown.test", "open", "", "-", $"DENY {Reasons.DefaultDeny}");
            data.Add(front, "ruled.test", "open", "", "-", $"POLICY_VIOLATION {Reasons.RuleDeny}");
            data.Add(front, "127.0.0.1", "open", "", "-", $"BLOCK {Reasons.PrivateDestination}");
        }

        // The ClientHello check (CONNECT only): after the guard, before the dial.
        data.Add("CONNECT", "ok.test", "open", Loopback, "ok.test", $"ALLOW {Reasons.Allowed}");
        data.Add("CONNECT", "ok.test", "open", Loopback, "other.test", $"BLOCK {Reasons.SniMismatch}");
        data.Add("CONNECT", "ok.test", "open", "", "other.test", $"BLOCK {Reasons.PrivateDestination}");
        data.Add("CONNECT", "blocked.test", "open", Loopback, "other.test", $"BLOCK {Reasons.DomainBlocked}");
        data.Add("CONNECT", "unknown.test", "open", Loopback, "other.test", $"DENY {Reasons.DefaultDeny}");
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Observe_mode_records_the_decision_enforce_makes_and_forwards_it_unenforced(string front, string host, string portKind, string cidrs, string sni, string expected)
    {
        await using var open = await KestrelOrigin.StartAsync();
        await using var other = await KestrelOrigin.StartAsync();
        var closed = ClosedPort();
        var port = portKind switch { "open" => open.Port, "other" => other.Port, _ => closed };
        var parts = expected.Split(' ');
        var resolver = new MapResolver();
        foreach (var name in new[] { "ok.test", "blocked.test", "unknown.test", "ruled.test" })
        {
            resolver[name] = IPAddress.Loopback;
        }

        // ::1 first: refused by the guard (only 127.0.0.1 is in allowedCidrs), so never dialed.
        resolver.Set("mixed.test", IPAddress.IPv6Loopback, IPAddress.Loopback);

        var enforce = await RunAsync("enforce");
        var observe = await RunAsync("observe");

        // Enforce: the decision, and a refusal answered as such.
        Assert.Equal((parts[0], parts[1], true), (enforce.Record.Decision, enforce.Record.Reason, enforce.Record.Enforced));
        var refused = parts[0] != "ALLOW";
        Assert.Equal(refused ? 403 : 200, enforce.Record.Status);
        if (!refused)
        {
            Assert.Equal("127.0.0.1", enforce.Record.DialedIp);
        }

        // Observe: the same decision, let through (the dial fails only where nothing listens), and
        // enforced:false exactly when enforce refused.
        Assert.Equal((parts[0], parts[1], !refused), (observe.Record.Decision, observe.Record.Reason, observe.Record.Enforced));
        Assert.Equal(portKind == "closed" ? 502 : 200, observe.Record.Status);
        Assert.Equal("127.0.0.1", observe.Record.DialedIp);
        Assert.Equal(portKind == "closed" ? 502 : 200, observe.Answer);
        if (portKind == "closed")
        {
            // The dial's failure is told by the close record, not by the decision record's reason.
            var close = Assert.Single(observe.Closes);
            Assert.Equal((ProxyReasons.UpstreamRefused, 502), (close.Reason, close.Status));
        }

        async Task<(AuditEntry Record, List<AuditEntry> Closes, int Answer)> RunAsync(string mode)
        {
            using var policy = new PolicyEngines($$"""
                { "version": 1, "mode": "{{mode}}", "defaultAction": "deny",
                  "network": { "allowedCidrs": [{{cidrs}}], "allowedPorts": [{{open.Port}}, {{closed}}], "requireSniMatch": {{(sni == "-" ? "false" : "true")}} },
                  "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
                  "policies": [ { "name": "p", "allowedDomains": ["ok.test", "mixed.test", "ruled.test", "127.0.0.1"], "blockedDomains": ["blocked.test"],
                                  "rules": [ { "name": "no-ruled", "action": "deny", "when": [ { "field": "domain", "op": "equals", "value": "ruled.test" } ] } ] } ] }
                """);
            using var dir = new TempDir();
            var auditDir = dir.File("audit");
            int answer;
            using (var writer = AuditWriter.Open(new AuditOptions { Directory = auditDir }, TimeProvider.System))
            {
                await using var proxy = TestProxy.Start(gate: new PolicyGate(policy.Engine, TimeProvider.System, writer), resolver: resolver);
                using var client = await RawClient.ConnectAsync(proxy.EndPoint);
                var authority = $"{host}:{port}";
                if (front == "CONNECT")
                {
                    await client.SendAsync($"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n{PolicyEngines.Credentials()}\r\n");
                    answer = (await client.ReadHeadAsync()).Status;
                    if (answer == 200)
                    {
                        if (sni != "-")
                        {
                            // The origin is plain HTTP: it answers the ClientHello with an error, or closes.
                            await client.SendAsync(await ClientHellos.CaptureAsync(sni));
                        }
                        else
                        {
                            await client.SendAsync($"GET /hello HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
                            answer = (await client.ReadHeadAsync()).Status;
                        }

                        await client.ReadToEndAsync();
                    }
                }
                else
                {
                    await client.SendAsync($"GET http://{authority}/hello HTTP/1.1\r\nHost: {authority}\r\n{PolicyEngines.Credentials()}Connection: close\r\n\r\n");
                    answer = (await client.ReadHeadAsync()).Status;
                }

                client.Dispose();
                await proxy.Server.DrainAsync();
            }

            var entries = AuditReader.ReadDirectory(auditDir).Select(i => i.Entry!).ToList();
            return (Assert.Single(entries, e => e.Kind == AuditKind.Decision), entries.Where(e => e.Kind == AuditKind.Close).ToList(), answer);
        }
    }

    /// <summary>
    /// Without a policy file the built-in observe policy judges with the guard a file without a
    /// <c>network</c> section has (SPEC §3): a name on a port outside 80 and 443, or resolving to a
    /// private address, is recorded as the refusal enforce would give, not as <c>ALLOW default_allow</c>,
    /// and forwarded all the same.
    /// </summary>
    [Theory]
    [InlineData("GET", "lan.test", "origin", "BLOCK port_not_allowed", false)]
    [InlineData("CONNECT", "lan.test", "origin", "BLOCK port_not_allowed", false)]
    [InlineData("GET", "lan.test", "80", "BLOCK private_destination", false)]
    [InlineData("GET", "127.0.0.1", "80", "BLOCK private_destination", false)]
    public async Task Without_a_policy_file_observe_mode_records_the_default_guard_verdict(string front, string host, string portKind, string expected, bool enforced)
    {
        await using var origin = await KestrelOrigin.StartAsync();
        var port = portKind == "origin" ? origin.Port : int.Parse(portKind, System.Globalization.CultureInfo.InvariantCulture);
        var resolver = new MapResolver { ["lan.test"] = IPAddress.Loopback };
        var engine = new PolicyEngine(null, 512, TimeProvider.System);
        using var dir = new TempDir();
        var auditDir = dir.File("audit");
        using (var writer = AuditWriter.Open(new AuditOptions { Directory = auditDir }, TimeProvider.System))
        {
            var gate = new PolicyGate(engine, TimeProvider.System, writer);
            await using var proxy = TestProxy.Start(gate: gate, resolver: resolver);
            using var client = await RawClient.ConnectAsync(proxy.EndPoint);
            var authority = $"{host}:{port}";
            if (front == "CONNECT")
            {
                await client.SendAsync($"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n");
                Assert.Equal(200, (await client.ReadHeadAsync()).Status);
                await client.SendAsync($"GET /hello HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
                Assert.Equal(200, (await client.ReadHeadAsync()).Status);
            }
            else
            {
                await client.SendAsync($"GET http://{authority}/hello HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
                var status = (await client.ReadHeadAsync()).Status;
                if (portKind == "origin")
                {
                    Assert.Equal(200, status);
                }
            }

            client.Dispose();
            await proxy.Server.DrainAsync();
        }

        var record = Assert.Single(AuditReader.ReadDirectory(auditDir).Select(i => i.Entry!), e => e.Kind == AuditKind.Decision);
        Assert.Equal((expected, enforced, "anonymous", "127.0.0.1"), ($"{record.Decision} {record.Reason}", record.Enforced, record.Agent, record.DialedIp));
    }

    /// <summary>
    /// A protocol where the server speaks first (SMTP) through CONNECT to a name, without a policy file:
    /// the port is already recorded as refused, so no ClientHello check could change the record, and the
    /// tunnel is dialed at once instead of waiting for client bytes that never come (the header timeout
    /// is set far beyond the read's, so waiting would fail the read).
    /// </summary>
    [Fact]
    public async Task Without_a_policy_file_a_server_first_tunnel_is_not_held_for_a_client_hello()
    {
        await using var smtp = new TcpOrigin(async s =>
        {
            await s.SendAsync("220 smtp.test ready\r\n"u8.ToArray());
            await s.ReceiveAsync(new byte[1]);
        });
        var resolver = new MapResolver { ["smtp.test"] = IPAddress.Loopback };
        using var dir = new TempDir();
        var auditDir = dir.File("audit");
        using (var writer = AuditWriter.Open(new AuditOptions { Directory = auditDir }, TimeProvider.System))
        {
            var gate = new PolicyGate(new PolicyEngine(null, 512, TimeProvider.System), TimeProvider.System, writer);
            await using var proxy = TestProxy.Start(o => o.HeaderTimeoutMs = 600_000, gate: gate, resolver: resolver);
            using var client = await RawClient.ConnectAsync(proxy.EndPoint);
            await client.SendAsync($"CONNECT smtp.test:{smtp.Port} HTTP/1.1\r\nHost: smtp.test:{smtp.Port}\r\n\r\n");
            Assert.Equal(200, (await client.ReadHeadAsync()).Status);
            Assert.Equal("220 smtp.test ready\r\n", System.Text.Encoding.ASCII.GetString(await client.ReadExactlyAsync(21)));
            client.Dispose();
            await proxy.Server.DrainAsync();
        }

        var record = Assert.Single(AuditReader.ReadDirectory(auditDir).Select(i => i.Entry!), e => e.Kind == AuditKind.Decision);
        Assert.Equal(("BLOCK", Reasons.PortNotAllowed, false, "127.0.0.1"), (record.Decision, record.Reason, record.Enforced, record.DialedIp));
    }

    /// <summary>What the built-in policy still allows: a public address on 80 or 443 (judged, never dialed here).</summary>
    [Fact]
    public void Without_a_policy_file_a_public_destination_on_an_allowed_port_is_allowed()
    {
        var policy = new PolicyEngine(null, 512, TimeProvider.System).Current;
        Assert.True(policy.IsObserve);
        foreach (var port in new[] { 80, 443 })
        {
            var result = policy.Decide(policy.Anonymous!, new RequestFacts("registry.example.org"u8, port, "CONNECT"u8, default, default, null, isConnect: true), DateTimeOffset.UtcNow, 0);
            Assert.Equal((Decision.Allow, Reasons.DefaultAllow), (result.Decision, result.Reason));
        }

        Assert.True(policy.CheckResolved(IPAddress.Parse("93.184.216.34")).IsAllow);
        Assert.Equal(Reasons.PrivateDestination, policy.CheckResolved(IPAddress.Parse("10.0.0.7")).Reason);
        Assert.Equal(Reasons.MetadataDestination, policy.CheckResolved(IPAddress.Parse("169.254.169.254")).Reason);
        Assert.True(policy.Network.RequireSniMatch);
    }

    private static int ClosedPort()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)listener.LocalEndPoint!).Port;
    }
}
