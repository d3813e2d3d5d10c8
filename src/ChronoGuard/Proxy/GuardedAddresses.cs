using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using ChronoGuard.Net;

namespace ChronoGuard.Proxy;

/// <summary>
/// The addresses a request may dial, and the only thing <see cref="Dialer"/> dials. Its makers,
/// <see cref="ResolveAsync"/> (the decided host resolved once) and <see cref="Judge"/> (the original
/// destination of a redirected connection), have the guard judge every address
/// (<see cref="RequestScope.JudgeAddresses"/>): no front end can hand the dialer an address the guard
/// did not see, and no second lookup exists for a rebinding resolver to answer differently.
/// </summary>
internal readonly struct GuardedAddresses
{
    private readonly IPAddress[]? _addresses;

    private GuardedAddresses(IPAddress[] addresses, int count)
    {
        _addresses = addresses;
        Count = count;
    }

    /// <summary>How many addresses passed (in observe mode past a refusal: all of them, to be dialed anyway).</summary>
    public int Count { get; }

    public IPAddress this[int index] => (uint)index < (uint)Count ? _addresses![index] : throw new ArgumentOutOfRangeException(nameof(index));

    /// <summary>
    /// The one address a front end already knows the request goes to (a redirected connection's
    /// original destination, bound to the decided name by that front end), judged by the guard.
    /// </summary>
    public static (ConnectOutcome Outcome, GuardedAddresses Addresses) Judge(RequestScope scope, IPAddress destination)
    {
        IPAddress[] addresses = [destination];
        var passed = scope.JudgeAddresses(addresses);
        return passed == 0 ? (ConnectOutcome.NotAllowed, default) : (ConnectOutcome.Connected, new GuardedAddresses(addresses, passed));
    }

    /// <summary>
    /// Resolves the decided host (an IP literal is its own answer) under ConnectTimeoutMs and judges
    /// every address. Connected means at least one may be dialed; NotAllowed means the guard refused
    /// them all (the refusal is now the scope's decision).
    /// </summary>
    [AsyncMethodBuilder(typeof(PooledValueTaskBuilder<>))]
    public static async ValueTask<(ConnectOutcome Outcome, GuardedAddresses Addresses)> ResolveAsync(RequestScope scope)
    {
        var context = scope.Context;
        IPAddress[] addresses;
        if (IPAddress.TryParse(scope.Decision.Host, out var literal))
        {
            addresses = [literal];
        }
        else
        {
            using var deadline = new CancellationTokenSource(TimeSpan.FromMilliseconds(context.Options.ConnectTimeoutMs), context.Time);
            try
            {
                addresses = await context.Resolver.ResolveAsync(scope.Decision.Host, deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return (ConnectOutcome.TimedOut, default);
            }
            catch (SocketException)
            {
                return (ConnectOutcome.NameNotResolved, default);
            }

            if (addresses.Length == 0)
            {
                return (ConnectOutcome.NameNotResolved, default);
            }
        }

        var passed = scope.JudgeAddresses(addresses);
        return passed == 0 ? (ConnectOutcome.NotAllowed, default) : (ConnectOutcome.Connected, new GuardedAddresses(addresses, passed));
    }
}
