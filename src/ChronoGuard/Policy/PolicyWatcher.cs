namespace ChronoGuard.Policy;

/// <summary>
/// Reloads when the policy file changes. Editors and Kubernetes ConfigMaps replace files in several
/// steps (write temp, rename, swap a symlink), so events are debounced and the directory is watched,
/// not just the file.
/// </summary>
internal sealed class PolicyWatcher : IDisposable
{
    private readonly FileSystemWatcher _watcher;
    private readonly ITimer _debounce;

    public PolicyWatcher(string path, TimeProvider time, Action reload, int debounceMs = 250)
    {
        var full = System.IO.Path.GetFullPath(path);
        _debounce = time.CreateTimer(_ => reload(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _watcher = new FileSystemWatcher(System.IO.Path.GetDirectoryName(full)!)
        {
            IncludeSubdirectories = false,
            NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.CreationTime,
        };
        var name = System.IO.Path.GetFileName(full);
        void OnEvent(object? sender, FileSystemEventArgs e)
        {
            // ConfigMap updates swap a "..data" symlink, never touching the file's own name.
            if (e.Name is null || e.Name == name || e.Name.StartsWith("..", StringComparison.Ordinal) || (e is RenamedEventArgs r && r.OldName == name))
            {
                _debounce.Change(TimeSpan.FromMilliseconds(debounceMs), Timeout.InfiniteTimeSpan);
            }
        }

        _watcher.Changed += OnEvent;
        _watcher.Created += OnEvent;
        _watcher.Renamed += OnEvent;
        _watcher.Deleted += OnEvent;
        _watcher.EnableRaisingEvents = true;
    }

    public void Dispose()
    {
        _watcher.Dispose();
        _debounce.Dispose();
    }
}
