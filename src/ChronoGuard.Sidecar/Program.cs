using ChronoGuard.Sidecar.Cli;

// Socket continuations run on the epoll thread instead of hopping to the thread pool. Every
// continuation on the proxy path is non-blocking (the audit writer has its own thread), and the hop
// was a quarter of the CPU per forwarded request: 65 -> 43 CPU ms per 1,000 requests, 14.3k -> 18.7k
// req/s with hey -c 32 through the AOT binary on the 2-core dev machine. Set before the first socket;
// an explicit setting in the environment wins.
if (Environment.GetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS") is null)
{
    Environment.SetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", "1");
}

return await CommandLine.RunAsync(args, Console.Out, Console.Error).ConfigureAwait(false);
