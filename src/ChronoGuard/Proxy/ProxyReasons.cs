namespace ChronoGuard.Proxy;

/// <summary>Reasons the proxy itself gives (the policy's are in <see cref="Policy.Reasons"/>): static strings, never formatted.</summary>
internal static class ProxyReasons
{
    public const string AuditUnavailable = "audit_unavailable";
    public const string HeaderTimeout = "header_timeout";
    public const string BodyTimeout = "body_timeout";
    public const string IdleTimeout = "idle_timeout";
    public const string SniTimeout = "sni_timeout";
    public const string Drain = "drain";
    public const string Reset = "reset";
    public const string Closed = "closed";
    public const string Complete = "complete";
    public const string ClientClosed = "client_closed";
    public const string MaxConnections = "max_connections";
    public const string DescriptorsExhausted = "descriptors_exhausted";
    public const string UpstreamTimeout = "upstream_timeout";
    public const string UpstreamUnresolved = "upstream_unresolved";
    public const string UpstreamRefused = "upstream_refused";
    public const string UpstreamUnreachable = "upstream_unreachable";
    public const string UpstreamClosed = "upstream_closed";
    public const string BadUpstreamResponse = "bad_upstream_response";

    /// <summary>An inspected request's upstream did not complete TLS with a certificate valid for the host (SPEC §7).</summary>
    public const string UpstreamTlsInvalid = "upstream_tls_invalid";

    /// <summary>The client of an inspected tunnel did not complete the TLS handshake with the proxy (it does not trust the CA, or left).</summary>
    public const string ClientTlsFailed = "client_tls_failed";

    /// <summary>The gate asked to inspect a tunnel but the proxy has no CA configured: refused, never passed opaque.</summary>
    public const string InspectionUnavailable = "inspection_unavailable";

    /// <summary>The policy inspects a host the CA's name constraints leave out (<c>ca init --permit</c>): refused, no leaf minted.</summary>
    public const string InspectionNameNotPermitted = "inspection_name_not_permitted";

    /// <summary>DNS guard: a question for a name no policy of the agent could allow (SPEC §10).</summary>
    public const string DnsNameRefused = "dns_name_refused";

    /// <summary>DNS guard: a query type beyond A/AAAA/CNAME/HTTPS/SVCB that no policy lists in <c>dnsTypes</c>, or a class other than IN.</summary>
    public const string DnsTypeRefused = "dns_type_refused";

    /// <summary>DNS guard: a message that is not one readable question (FORMERR, or dropped when it has no header).</summary>
    public const string DnsMalformed = "dns_malformed";

    /// <summary>Transparent capture: the name a redirected client gave (SNI, Host) does not resolve to the address it was going to (SPEC §10).</summary>
    public const string NameAddressMismatch = "name_address_mismatch";

    /// <summary>Transparent capture: no name for the destination address (none in the bytes, none answered by the DNS guard), and no policy names the address.</summary>
    public const string UnresolvedDestination = "unresolved_destination";

    /// <summary>Transparent capture: the redirected connection was going to one of the sidecar's own listeners (or was not redirected): a loop.</summary>
    public const string OwnListener = "own_listener";

    /// <summary>Transparent capture: a client silent for FirstBytesMs spoke before its server did; the tunnel opened for the silence closed unused and the connection was served from the client's bytes.</summary>
    public const string ClientSpokeFirst = "client_spoke_first";

    /// <summary>Every reason above: the metrics' bounded reason label is built from it.</summary>
    public static readonly string[] All =
    [
        AuditUnavailable, HeaderTimeout, BodyTimeout, IdleTimeout, SniTimeout, Drain, Reset, Closed, Complete, ClientClosed,
        MaxConnections, DescriptorsExhausted, UpstreamTimeout, UpstreamUnresolved, UpstreamRefused, UpstreamUnreachable, UpstreamClosed, BadUpstreamResponse,
        UpstreamTlsInvalid, ClientTlsFailed, InspectionUnavailable, InspectionNameNotPermitted,
        DnsNameRefused, DnsTypeRefused, DnsMalformed,
        NameAddressMismatch, UnresolvedDestination, OwnListener, ClientSpokeFirst,
    ];
}
