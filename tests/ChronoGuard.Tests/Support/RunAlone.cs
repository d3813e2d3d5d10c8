namespace ChronoGuard.Tests.Support;

/// <summary>
/// Tests that fill disks, fault the audit writer or kill processes under load: run alone, after the
/// parallel ones, so that a loaded machine cannot turn a commit deadline into a false fault.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class RunAlone
{
    public const string Name = "serial: audit faults and crashes";
}
