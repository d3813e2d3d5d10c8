using System.Net;
using System.Text;
using System.Text.Json;
using ChronoGuard.Audit;
using ChronoGuard.Policy;
using ChronoGuard.Proxy;
using ChronoGuard.Sidecar.Cli;
using ChronoGuard.Tests.Audit;
using ChronoGuard.Tests.Policy;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Proxy;

/// <summary>
/// SPEC §7 through the real proxy, a real policy and a real audit log, without TLS: a placeholder in a
/// plain-HTTP request or in a CONNECT head is refused <c>credential_misdirected</c> before anything
/// reaches the origin, recorded in format 3 with the credential's name, and the chain (JSONL and CSV)
/// verifies; the secret is in no output.
/// </summary>
public sealed class CredentialMisdirectedProxyTests
{
    private const string Secret = "sk-live-Z9q8w7e6r5t4y3u2";
    private const string Placeholder = "cg-placeholder-api";

    private static string Policy(int port) => $$"""
        {
          "version": 1, "defaultAction": "deny",
          "network": { "allowedCidrs": ["127.0.0.0/8"], "allowedPorts": [{{port}}], "requireSniMatch": false },
          "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
          "policies": [ { "name": "p", "allowedDomains": ["api.test", "plain.test"], "inspect": ["api.test"] } ],
          "credentials": [ { "name": "api-key", "agents": ["bot"], "domains": ["api.test"], "header": "Authorization",
            "value": "Bearer {secret}", "secretFile": "api.secret", "placeholder": "{{Placeholder}}" } ]
        }
        """;

    [Fact]
    public async Task A_placeholder_in_plain_HTTP_or_a_CONNECT_head_is_refused_recorded_and_never_forwarded()
    {
        using var dir = new TempDir();
        await using var origin = await KestrelOrigin.StartAsync();
        File.WriteAllText(dir.File("api.secret"), Secret + "\n");
        File.WriteAllText(dir.File("policy.json"), Policy(origin.Port).Replace("$TOKEN", PolicyFixture.TokenSha, StringComparison.Ordinal));
        var engine = new PolicyEngine(dir.File("policy.json"), 512, TimeProvider.System) { InspectionConfigured = true };
        Assert.True(engine.Reload().Ok);
        var resolver = new MapResolver();
        resolver.Set("api.test", [IPAddress.Loopback]);
        resolver.Set("plain.test", [IPAddress.Loopback]);
        var auth = PolicyEngines.Credentials();
        var port = origin.Port;
        var requests = new[]
        {
            $"GET http://api.test:{port}/hello HTTP/1.1\r\nHost: api.test:{port}\r\n{auth}Authorization: Bearer {Placeholder}\r\n\r\n",
            $"GET http://plain.test:{port}/hello?key={Placeholder} HTTP/1.1\r\nHost: plain.test:{port}\r\n{auth}\r\n",
            $"GET http://plain.test:{port}/hello HTTP/1.1\r\nHost: plain.test:{port}\r\n{auth}X-Smuggle: x{Placeholder}x\r\n\r\n",
            $"CONNECT api.test:{port} HTTP/1.1\r\nHost: api.test:{port}\r\n{auth}X-Token: {Placeholder}\r\n\r\n",
        };
        var auditDir = dir.File("audit");
        var metrics = new ChronoGuard.Metrics.ProxyMetrics(DecisionReasons.Labels);
        var answers = new List<(RawResponse Head, string Body)>();
        using (var audit = AuditWriter.Open(new AuditOptions { Directory = auditDir, Durability = "commit-before-forward" }, TimeProvider.System))
        {
            await using var proxy = TestProxy.Start(gate: new PolicyGate(engine, TimeProvider.System, audit, metrics), resolver: resolver);
            foreach (var request in requests)
            {
                using var client = await RawClient.ConnectAsync(proxy.EndPoint);
                await client.SendAsync(request);
                var head = await client.ReadHeadAsync();
                answers.Add((head, Encoding.ASCII.GetString(await client.ReadToEndAsync())));
            }

            // The neighbour that must pass: plain HTTP without a placeholder.
            using var plain = await RawClient.ConnectAsync(proxy.EndPoint);
            await plain.SendAsync($"GET http://plain.test:{port}/hello HTTP/1.1\r\nHost: plain.test:{port}\r\n{auth}Connection: close\r\n\r\n");
            Assert.Equal(200, (await plain.ReadHeadAsync()).Status);
            Assert.Contains("hello from origin", Encoding.ASCII.GetString(await plain.ReadToEndAsync()), StringComparison.Ordinal);
        }

        foreach (var (head, body) in answers)
        {
            Assert.Equal(403, head.Status);
            Assert.Equal("POLICY_VIOLATION", head["X-ChronoGuard-Decision"]);
            Assert.DoesNotContain(Secret, body, StringComparison.Ordinal);
        }

        // Counted under their own reason label (not "other").
        var counters = metrics.ForAgent(engine.Current.AgentsById["bot"].Runtime.Index);
        var label = DecisionReasons.Labels.IndexOf(Reasons.CredentialMisdirected);
        Assert.NotEqual(DecisionReasons.Labels.IndexOf(DecisionReasons.Other), label);
        Assert.Equal(4, counters.Decisions(Decision.PolicyViolation, label));

        // Only the allowed request reached the origin.
        Assert.Equal(1, origin.ConnectionIds.Values.Sum());

        var lines = AuditTestData.Export(auditDir);
        var decisions = lines.Select(l => JsonDocument.Parse(l).RootElement).Where(r => r.GetProperty("kind").GetString() == "decision").ToList();
        Assert.Equal(5, decisions.Count);
        foreach (var r in decisions.Take(4))
        {
            Assert.Equal(3, r.GetProperty("format").GetInt32());
            Assert.Equal(Reasons.CredentialMisdirected, r.GetProperty("reason").GetString());
            Assert.Equal("api-key", r.GetProperty("credential").GetString());
            Assert.Equal(403, r.GetProperty("status").GetInt32());
        }

        Assert.Equal(2, decisions[4].GetProperty("format").GetInt32());
        Assert.False(decisions[4].TryGetProperty("credential", out _));

        // The chain verifies from the log, a JSONL export and a CSV export; no output holds the secret.
        var outputs = new StringBuilder();
        foreach (var format in new[] { "jsonl", "csv" })
        {
            var file = dir.File("export." + format);
            var err = new StringWriter();
            Assert.Equal(0, ExportCommand.Run(["--audit-dir", auditDir, "--format", format, "--out", file], new StringWriter(), err));
            var stdout = new StringWriter();
            Assert.True(VerifyCommand.Run(["--" + format, file], stdout, err) == 0, stdout + err.ToString());
            outputs.Append(File.ReadAllText(file)).Append(stdout).Append(err);
        }

        var verified = new StringWriter();
        Assert.Equal(0, VerifyCommand.Run(["--audit-dir", auditDir], verified, new StringWriter()));
        outputs.Append(verified);
        Assert.Contains("credential_misdirected", outputs.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain(Secret, outputs.ToString(), StringComparison.Ordinal);
        foreach (var segment in Directory.EnumerateFiles(auditDir, "*", SearchOption.AllDirectories))
        {
            Assert.True(File.ReadAllBytes(segment).AsSpan().IndexOf(Encoding.ASCII.GetBytes(Secret)) < 0, segment);
        }
    }
}
