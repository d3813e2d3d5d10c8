using ChronoGuard.Sidecar.Cli;
using ChronoGuard.Sidecar.Hosting;
using ChronoGuard.Tests.Support;
using Microsoft.Extensions.Configuration;

namespace ChronoGuard.Tests.Cli;

public sealed class RunConfigurationTests
{
    [Fact]
    public void Flags_override_the_file_and_the_file_overrides_embedded_defaults()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("cg.json"), """
            { "Proxy": { "Listen": "127.0.0.1:1111", "MaxConnections": 7 }, "Stats": { "Listen": "127.0.0.1:2222" } }
            """);
        Assert.Null(RunArguments.TryParse(["--config", dir.File("cg.json"), "--listen", "127.0.0.1:3333"], out var file, out var overrides));

        var builder = new ConfigurationBuilder();
        SidecarConfiguration.Add(builder, file, overrides);
        var settings = SidecarSettings.Bind(builder.Build());

        Assert.Equal("127.0.0.1:3333", settings.Proxy.Listen);
        Assert.Equal(7, settings.Proxy.MaxConnections);
        Assert.Equal("127.0.0.1:2222", settings.Stats.Listen);
        Assert.Equal(15_000, settings.Proxy.DrainTimeoutMs);
        Assert.Equal("./chronoguard-audit", settings.Audit["Directory"]);
    }

    [Theory]
    [InlineData("{ \"Proxy\": { \"MaxConnections\": \"lots\" } }", "Proxy:MaxConnections")]
    [InlineData("{ \"Proxy\": { \"Listen\": \"localhost:99999\" } }", "Proxy:Listen")]
    [InlineData("{ \"Proxy\": { \"HeaderTimeoutMs\": 0 } }", "Proxy:HeaderTimeoutMs")]
    [InlineData("{ \"Proxy\": { ", "cg.json")]
    public async Task Bad_configuration_is_one_line_naming_the_place_and_exit_2(string json, string named)
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("cg.json"), json);
        var stderr = new StringWriter();

        var code = await RunCommand.RunAsync(["--config", dir.File("cg.json")], TextWriter.Null, stderr, CancellationToken.None);

        Assert.Equal(2, code);
        var line = stderr.ToString().TrimEnd();
        Assert.DoesNotContain('\n', line);
        Assert.Contains(named, line, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new[] { "--bogus", "x" }, "unknown option '--bogus'")]
    [InlineData(new[] { "--listen" }, "--listen needs a value")]
    [InlineData(new[] { "--config", "/nonexistent/cg.json" }, "/nonexistent/cg.json: config file not found")]
    public async Task Bad_arguments_exit_2_with_one_line(string[] args, string message)
    {
        var stderr = new StringWriter();
        Assert.Equal(2, await RunCommand.RunAsync(args, TextWriter.Null, stderr, CancellationToken.None));
        Assert.Contains(message, stderr.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Version_and_help_exit_0()
    {
        var stdout = new StringWriter();
        Assert.Equal(0, await CommandLine.RunAsync(["--version"], stdout, TextWriter.Null));
        Assert.StartsWith("chronoguard ", stdout.ToString(), StringComparison.Ordinal);
        Assert.Equal(2, await CommandLine.RunAsync(["frobnicate"], TextWriter.Null, TextWriter.Null));
    }
}
