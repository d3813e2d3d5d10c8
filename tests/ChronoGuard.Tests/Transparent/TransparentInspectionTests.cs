using System.Net;
using ChronoGuard.Audit;
using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Transparent;

/// <summary>
/// SPEC §7 and §10 together: a name the policy inspects is inspected whichever way the connection came
/// in, so a client that ignores the proxy variables meets the same path rules and gets the same
/// credential injected, dialed only to its original destination; the audit log (format 3) says each
/// request was the transparent listener's agent.
/// </summary>
public sealed class TransparentInspectionTests : IDisposable
{
    private const string Secret = "sk-Transparent-S3cret-42";
    private const string Placeholder = "cg-placeholder-api";

    private readonly TempDir _dir = new();

    public TransparentInspectionTests() => File.WriteAllText(_dir.File("api.secret"), Secret + "\n");

    public void Dispose() => _dir.Dispose();

    private string Json(int port) => $$"""
        {
          "version": 1, "defaultAction": "deny",
          "network": { "allowedPorts": [{{port}}], "allowPrivateDestinations": true },
          "agents": [ { "id": "bot", "tokenSha256": "$TOKEN", "policies": ["p"] } ],
          "policies": [ { "name": "p",
            "allowedDomains": ["{{InspectionRig.Host}}"],
            "inspect": ["{{InspectionRig.Host}}"],
            "rules": [ { "name": "read-only", "priority": 1, "action": "deny", "when": [ { "field": "method", "op": "not_in", "value": ["GET", "HEAD"] } ] } ] } ],
          "credentials": [
            { "name": "api-key", "agents": ["bot"], "domains": ["{{InspectionRig.Host}}"], "header": "Authorization",
              "value": "Bearer {secret}", "secretFile": "{{_dir.File("api.secret")}}", "placeholder": "{{Placeholder}}" }
          ]
        }
        """;

    [Fact]
    public async Task A_redirected_TLS_client_is_inspected_judged_per_request_given_the_credential_and_recorded_as_transparent()
    {
        await using var inspection = await InspectionRig.StartAsync();
        var audit = AuditWriter.Open(new AuditOptions { Directory = _dir.File("audit") }, TimeProvider.System);
        await using (var rig = TransparentRig.Start(Json(inspection.Port), inspection.Resolver, inspection: inspection.Inspection, audit: audit))
        {
            rig.Answered(InspectionRig.Host, IPAddress.Loopback);
            using var client = rig.DirectClient(_ => IPAddress.Loopback, (_, certificate, _, errors) => InspectionRig.ChainsTo(inspection.Ca.Certificate, certificate, errors));

            using var read = new HttpRequestMessage(HttpMethod.Get, inspection.Url("/quiet/user"));
            read.Headers.TryAddWithoutValidation("Authorization", "Bearer " + Placeholder);
            using var allowed = await client.SendAsync(read);
            using var write = await client.PostAsync(inspection.Url("/quiet/user"), new StringContent("x"));

            Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
            Assert.Equal(HttpStatusCode.Forbidden, write.StatusCode);
            var echo = Assert.Single(inspection.Origin.Echoes);
            Assert.Contains("Authorization: Bearer " + Secret + "\n", echo, StringComparison.Ordinal);
            Assert.Equal(["GET /quiet/user"], inspection.Origin.Seen);
        }

        audit.Dispose();
        var decisions = AuditReader.ReadDirectory(_dir.File("audit")).Select(i => i.Entry!).Where(e => e.Kind == AuditKind.Decision).ToList();
        Assert.Equal(["TRANSPARENT ", "GET /quiet/user", "POST /quiet/user"], decisions.Select(e => e.Method + " " + e.Path));
        Assert.All(decisions, e => Assert.Equal((AuditIdentity.Transparent, "bot", (byte)3), (e.Identity, e.Agent, e.Format)));
        Assert.Equal(["", "api-key", ""], decisions.Select(e => e.Credential));
        // The tunnel and the forwarded request name the original destination; the refused one dialed nothing.
        Assert.Equal(["127.0.0.1", "127.0.0.1", ""], decisions.Select(e => e.DialedIp));
    }
}
