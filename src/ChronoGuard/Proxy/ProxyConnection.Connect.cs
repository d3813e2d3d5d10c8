using System.Diagnostics;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Text;
using ChronoGuard.Http;

namespace ChronoGuard.Proxy;

internal sealed partial class ProxyConnection
{
    private Verdict _verdict;
    private Socket? _upstream;
    private NetworkStream? _upstreamStream;
    private PipeReader? _upstreamInput;
    private long _bytesUp;
    private long _bytesDown;

    private async Task ConnectAsync()
    {
        _verdict = new Verdict { Host = Encoding.ASCII.GetString(_head.Span(_head.TargetHost)), Port = _head.TargetPort, AuditSeq = -1 };
        _context.Hooks.Decide(this, _head, ref _verdict);
        if (!_verdict.Allowed)
        {
            await RecordAndRefuseAsync(_verdict.Refusal).ConfigureAwait(false);
            return;
        }

        var outcome = await DialAsync().ConfigureAwait(false);
        if (outcome != ConnectOutcome.Connected)
        {
            if (outcome != ConnectOutcome.NotAllowed)
            {
                await RecordAndRefuseAsync(UpstreamRefusal(outcome)).ConfigureAwait(false);
            }

            return;
        }

        _context.Hooks.Record(this, _head, ref _verdict, 200);
        await _context.Hooks.WaitDurableAsync(_verdict.AuditSeq).ConfigureAwait(false);
        await SocketSend.SendAllAsync(_client, ResponseWriter.ConnectEstablishedBytes).ConfigureAwait(false);
        ReleaseHead();
        SetPhase(ConnectionPhase.Tunnel);
        var started = Environment.TickCount64;
        var reason = await TunnelAsync().ConfigureAwait(false);
        _context.Hooks.OnClosed(this, _verdict, _bytesUp, _bytesDown, Environment.TickCount64 - started, reason);
    }

    /// <summary>
    /// Resolves the verdict's host, lets the gate judge every address, and dials the accepted ones.
    /// On <see cref="ConnectOutcome.NotAllowed"/> the refusal has already been sent.
    /// </summary>
    private async ValueTask<ConnectOutcome> DialAsync()
    {
        var started = Stopwatch.GetTimestamp();
        using var deadline = _context.Connector.StartDeadline(CancellationToken.None);
        var (outcome, addresses) = await _context.Connector.ResolveAsync(_verdict.Host, deadline.Token).ConfigureAwait(false);
        if (outcome != ConnectOutcome.Connected)
        {
            return outcome;
        }

        var accepted = 0;
        for (var i = 0; i < addresses.Length; i++)
        {
            if (_context.Hooks.AcceptAddress(this, ref _verdict, addresses[i]))
            {
                addresses[accepted++] = addresses[i];
            }
        }

        if (accepted == 0)
        {
            await RecordAndRefuseAsync(_verdict.Refusal).ConfigureAwait(false);
            return ConnectOutcome.NotAllowed;
        }

        var attempt = await UpstreamConnector.ConnectAsync(addresses, accepted, _verdict.Port, deadline.Token).ConfigureAwait(false);
        _verdict.Dialed = attempt.Address;
        if (attempt.Outcome != ConnectOutcome.Connected)
        {
            return attempt.Outcome;
        }

        _context.Hooks.OnUpstreamConnected(Stopwatch.GetTimestamp() - started);
        _upstream = attempt.Socket!;
        _upstreamStream = new NetworkStream(_upstream, ownsSocket: false);
        _upstreamInput = PipeReader.Create(_upstreamStream, PipeOptionsFor.Reader);
        if (IsAborted)
        {
            AbortUpstream();
            return ConnectOutcome.Unreachable;
        }

        return ConnectOutcome.Connected;
    }

    private static Refusal UpstreamRefusal(ConnectOutcome outcome) => outcome switch
    {
        ConnectOutcome.TimedOut => new Refusal(504, "ALLOW", "upstream_timeout"),
        ConnectOutcome.NameNotResolved => new Refusal(502, "ALLOW", "upstream_unresolved"),
        ConnectOutcome.Refused => new Refusal(502, "ALLOW", "upstream_refused"),
        _ => new Refusal(502, "ALLOW", "upstream_unreachable"),
    };

    private async Task RecordAndRefuseAsync(Refusal refusal)
    {
        _verdict.Refusal = refusal;
        _context.Hooks.Record(this, _head, ref _verdict, refusal.Status);
        await RefuseAsync(_verdict.Refusal with { AuditSeq = _verdict.AuditSeq }, audit: false).ConfigureAwait(false);
    }

    private void CloseUpstream()
    {
        var input = _upstreamInput;
        _upstreamInput = null;
        input?.Complete();
        _upstreamStream?.Dispose();
        _upstreamStream = null;
        _upstream?.Dispose();
        _upstream = null;
    }

    /// <summary>A tunnel reads the upstream socket directly; the pipe over it is not needed.</summary>
    private void CloseUpstreamPipe()
    {
        var input = _upstreamInput;
        _upstreamInput = null;
        input?.Complete();
        _upstreamStream?.Dispose();
        _upstreamStream = null;
    }

    private void AbortUpstream()
    {
        _upstreamInput?.CancelPendingRead();
        try
        {
            _upstream?.Dispose();
        }
        catch (ObjectDisposedException)
        {
        }
    }
}
