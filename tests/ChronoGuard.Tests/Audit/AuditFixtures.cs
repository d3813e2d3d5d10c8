using ChronoGuard.Tests.Support;

namespace ChronoGuard.Tests.Audit;

/// <summary>The committed test data: a format 1 log written by the sidecar before format 2 existed.</summary>
internal static class AuditFixtures
{
    public const string V1Head = "2a1f3863291003e303e2c0ee6ffb88824929bd69def591c6fabb5a629d518a47";

    public static string V1 { get; } = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../Audit/Fixtures/v1"));

    /// <summary>A writable copy of the format 1 audit directory.</summary>
    public static string CopyV1Directory(TempDir dir)
    {
        var target = dir.File("audit");
        foreach (var file in Directory.GetFiles(Path.Combine(V1, "audit"), "*", SearchOption.AllDirectories))
        {
            var to = Path.Combine(target, Path.GetRelativePath(Path.Combine(V1, "audit"), file));
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(file, to);
        }

        return target;
    }
}
